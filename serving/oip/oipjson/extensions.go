package oipjson

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
)

// The answers of Triton's extensions over REST, in the JSON Triton writes:
// its clients parse them with rapidjson (perf_analyzer, the C++ client) or
// Python's json, and read counts with GetUint64, so 64-bit integers are
// JSON numbers here, where the proto3 JSON mapping (protojson) would write
// strings.

// AppendStatistics appends the statistics extension's answer:
// {"model_stats": [...]}, every counter Triton's clients read present
// (they index members without checking), durations as {"count", "ns"},
// batch_stats per batch size, last_inference in milliseconds since the
// epoch (0 for none), and Triton's response_stats and memory_usage empty.
func AppendStatistics(b []byte, stats []oip.ModelStats) []byte {
	b = append(b, `{"model_stats":[`...)
	for i, s := range stats {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, s.Name)
		b = append(b, `,"version":`...)
		b = appendString(b, s.Version)
		b = append(b, `,"last_inference":`...)
		last := int64(0)
		if !s.LastInference.IsZero() {
			last = s.LastInference.UnixMilli()
		}
		b = strconv.AppendInt(b, last, 10)
		b = append(b, `,"inference_count":`...)
		b = strconv.AppendUint(b, s.InferenceCount, 10)
		b = append(b, `,"execution_count":`...)
		b = strconv.AppendUint(b, s.ExecutionCount, 10)
		in := s.Inference
		b = append(b, `,"inference_stats":{`...)
		b = appendStat(b, "success", in.Success, false)
		b = appendStat(b, "fail", in.Fail, true)
		b = appendStat(b, "queue", in.Queue, true)
		b = appendStat(b, "compute_input", in.ComputeInput, true)
		b = appendStat(b, "compute_infer", in.ComputeInfer, true)
		b = appendStat(b, "compute_output", in.ComputeOutput, true)
		b = appendStat(b, "cache_hit", in.CacheHit, true)
		b = appendStat(b, "cache_miss", in.CacheMiss, true)
		b = append(b, `},"response_stats":{},"batch_stats":[`...)
		for j, bs := range s.Batches {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"batch_size":`...)
			b = strconv.AppendInt(b, bs.Size, 10)
			b = appendStat(b, "compute_input", bs.ComputeInput, true)
			b = appendStat(b, "compute_infer", bs.ComputeInfer, true)
			b = appendStat(b, "compute_output", bs.ComputeOutput, true)
			b = append(b, '}')
		}
		b = append(b, `],"memory_usage":[]}`...)
	}
	return append(b, "]}"...)
}

func appendStat(b []byte, name string, s oip.Stat, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":{"count":`...)
	b = strconv.AppendUint(b, s.Count, 10)
	b = append(b, `,"ns":`...)
	b = strconv.AppendUint(b, s.NS, 10)
	return append(b, '}')
}

// AppendConfig appends a model configuration as Triton's
// model-configuration extension writes it: proto field names, every
// scalar, list and map field present (default values included, as
// protobuf's C++ printer with always_print_primitive_fields writes them:
// Triton's clients index "decoupled", "enable" and the like without
// checking), sub-messages and oneof members only when set, enums by name,
// and 64-bit integers as numbers.
func AppendConfig(b []byte, c *mc.ModelConfig) []byte {
	return appendMessage(b, c.ProtoReflect())
}

func appendMessage(b []byte, m protoreflect.Message) []byte {
	b = append(b, '{')
	first := true
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if (fd.ContainingOneof() != nil || fd.Message() != nil && !fd.IsList() && !fd.IsMap()) && !m.Has(fd) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, string(fd.Name()))
		b = append(b, ':')
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			b = append(b, '[')
			for j := range l.Len() {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, fd, l.Get(j))
			}
			b = append(b, ']')
		case fd.IsMap():
			b = appendMap(b, fd, v.Map())
		default:
			b = appendValue(b, fd, v)
		}
	}
	return append(b, '}')
}

func appendMap(b []byte, fd protoreflect.FieldDescriptor, m protoreflect.Map) []byte {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(x, y protoreflect.MapKey) int {
		switch fd.MapKey().Kind() {
		case protoreflect.StringKind:
			return strings.Compare(x.String(), y.String())
		case protoreflect.BoolKind:
			return cmp.Compare(btoi(x.Bool()), btoi(y.Bool()))
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			return cmp.Compare(x.Uint(), y.Uint())
		}
		return cmp.Compare(x.Int(), y.Int())
	})
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k.String())
		b = append(b, ':')
		b = appendValue(b, fd.MapValue(), m.Get(k))
	}
	return append(b, '}')
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendValue(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(b, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(b, v.Uint(), 10)
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32, NonFiniteString)
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64, NonFiniteString)
	case protoreflect.StringKind:
		return appendString(b, v.String())
	case protoreflect.BytesKind:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes())
		return append(b, '"')
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendString(b, string(ev.Name()))
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return appendMessage(b, v.Message())
	}
	return append(b, "null"...)
}

// AppendIndex appends the repository index, Triton's: a list of
// {"name", "version", "state", "reason"}, version and reason left out when
// empty.
func AppendIndex(b []byte, idx []oip.IndexEntry) []byte {
	b = append(b, '[')
	for i, e := range idx {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, e.Name)
		if e.Version != "" {
			b = append(b, `,"version":`...)
			b = appendString(b, e.Version)
		}
		b = append(b, `,"state":`...)
		b = appendString(b, e.State)
		if e.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendString(b, e.Reason)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// RepositoryRequest is the body of a repository index, load or unload
// request: {"ready": bool} for the index, {"parameters": {...}} for load
// and unload. Every field is optional, and an empty body is a request with
// none (Triton's clients send one for the index and for unload).
type RepositoryRequest struct {
	Ready      bool           `json:"ready"`
	Parameters map[string]any `json:"parameters"`
}

// DecodeRepositoryRequest reads a repository request body. Errors are
// InvalidArgument.
func DecodeRepositoryRequest(body []byte) (RepositoryRequest, error) {
	var r RepositoryRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, serving.Errorf(serving.InvalidArgument, "oipjson: repository request: %v", err)
	}
	return r, nil
}
