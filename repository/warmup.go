package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// WarmupSample is one entry of model_warmup: a request built from Inputs,
// or read from RequestFile, sent Count times through Predict before the
// version gets traffic. Exactly one of Inputs and RequestFile is set.
//
// As in Triton, when the model batches (max_batch_size > 0) an input's
// dims leave out the batch dimension: the request has BatchSize rows,
// each a copy of the values given (zeros and random values fill the whole
// tensor). Without batching, dims are the full shape.
type WarmupSample struct {
	// Name appears in errors and logs.
	Name string `json:"name,omitempty"`
	// BatchSize is the request's rows when the model batches; 0 means 1.
	// It must be 0 or 1 for a model that does not batch.
	BatchSize int `json:"batch_size,omitempty"`
	// Count is how many times the request runs; 0 means 1.
	Count int `json:"count,omitempty"`
	// Inputs, by input name.
	Inputs map[string]WarmupInput `json:"inputs,omitempty"`
	// RequestFile is an Open Inference Protocol (V2) JSON infer request,
	// {"inputs": [...]}, as a client would POST it; its path is relative to
	// the model's directory and may not leave it. servekit's own (config.json
	// only).
	RequestFile string `json:"request_file,omitempty"`
}

// WarmupInput is one input of a warm-up sample: a datatype, a shape and
// exactly one of ZeroData, RandomData, Data and InputDataFile.
type WarmupInput struct {
	// DataType is a protocol name ("FP32", "INT64") or Triton's spelling
	// ("TYPE_FP32").
	DataType string `json:"data_type"`
	// Dims is the shape, without the batch dimension when the model
	// batches. Required in servekit's form ([] is a scalar): dynamic dims
	// need a real size, which is exactly what a zeros-with-ones warm-up
	// gets wrong.
	Dims []int64 `json:"dims"`
	// ZeroData fills the tensor with zeros (empty strings for BYTES).
	ZeroData bool `json:"zero_data,omitempty"`
	// RandomData fills it with reproducible pseudo-random values: floats in
	// [-1, 1), integers in [0, 100), random bools, 8-letter strings.
	RandomData bool `json:"random_data,omitempty"`
	// Data gives the values, flat or nested, as in a V2 request's "data"
	// (e.g. [16000] for a sample-rate scalar). servekit's own.
	Data json.RawMessage `json:"data,omitempty"`
	// InputDataFile is Triton's input_data_file: a file in the model
	// directory's warmup/ folder holding the raw values of Dims,
	// little-endian and row-major; for BYTES, each element is a 4-byte
	// length and then its bytes.
	InputDataFile string `json:"input_data_file,omitempty"`
}

// warmupFromTriton turns Triton's ModelWarmup into a sample.
func warmupFromTriton(w *modelconfigpb.ModelWarmup) WarmupSample {
	s := WarmupSample{Name: w.Name, BatchSize: int(w.BatchSize), Count: int(w.Count)}
	for name, in := range w.Inputs {
		wi := WarmupInput{DataType: in.DataType.String(), Dims: append([]int64{}, in.Dims...)}
		switch d := in.InputDataType.(type) {
		case *modelconfigpb.ModelWarmup_Input_ZeroData:
			wi.ZeroData = true // Triton: set means zeros, whatever the value
		case *modelconfigpb.ModelWarmup_Input_RandomData:
			wi.RandomData = true
		case *modelconfigpb.ModelWarmup_Input_InputDataFile:
			wi.InputDataFile = d.InputDataFile
		}
		if s.Inputs == nil {
			s.Inputs = map[string]WarmupInput{}
		}
		s.Inputs[name] = wi
	}
	return s
}

// rows is the request's batch dimension, or 0 for a model that does not
// batch (dims are then the full shape).
func (s WarmupSample) rows(maxBatch int32) int64 {
	if maxBatch <= 0 {
		return 0
	}
	return int64(max(1, s.BatchSize))
}

func (s WarmupSample) check(maxBatch int32) error {
	switch {
	case s.Count < 0 || s.Count > maxWarmupCount:
		return fmt.Errorf("count %d: want 0 to %d", s.Count, maxWarmupCount)
	case s.BatchSize < 0:
		return fmt.Errorf("batch_size %d", s.BatchSize)
	case maxBatch <= 0 && s.BatchSize > 1:
		return fmt.Errorf("batch_size %d: the model does not batch (max_batch_size 0), so 1", s.BatchSize)
	case maxBatch > 0 && s.BatchSize > int(maxBatch):
		return fmt.Errorf("batch_size %d: at most max_batch_size %d", s.BatchSize, maxBatch)
	case len(s.Inputs) == 0 && s.RequestFile == "":
		return errors.New("set inputs or request_file")
	case len(s.Inputs) > 0 && s.RequestFile != "":
		return errors.New("set inputs or request_file, not both")
	case s.RequestFile != "" && s.BatchSize > 1:
		return errors.New("batch_size with request_file: the request gives its own shape")
	case s.RequestFile != "":
		if err := checkRelPath(s.RequestFile); err != nil {
			return fmt.Errorf("request_file: %v", err)
		}
		return nil
	}
	for _, name := range sortedKeys(s.Inputs) {
		if _, err := s.Inputs[name].check(name, s.rows(maxBatch)); err != nil {
			return fmt.Errorf("input %q: %w", name, err)
		}
	}
	return nil
}

// tritonTypes maps Triton's config spelling of datatypes to the protocol's.
var tritonTypes = map[string]string{"TYPE_STRING": "BYTES"}

func parseWarmupType(s string) (serving.DataType, error) {
	u := strings.ToUpper(s)
	if t, ok := tritonTypes[u]; ok {
		u = t
	}
	return serving.ParseDataType(strings.TrimPrefix(u, "TYPE_"))
}

// shape is the full shape: rows (if the model batches), then Dims.
func (in WarmupInput) shape(rows int64) []int64 {
	if rows == 0 {
		return in.Dims
	}
	return append([]int64{rows}, in.Dims...)
}

// check validates the input without building its data.
func (in WarmupInput) check(name string, rows int64) (serving.DataType, error) {
	dt, err := parseWarmupType(in.DataType)
	if err != nil {
		return 0, fmt.Errorf("data_type %q: want a datatype such as FP32, INT64, BYTES (or TYPE_FP32)", in.DataType)
	}
	if in.Dims == nil {
		return 0, fmt.Errorf("dims is required ([] for a scalar)")
	}
	n, err := serving.NumElements(in.shape(rows))
	if err != nil {
		return 0, fmt.Errorf("dims %v: %v", in.Dims, err)
	}
	if n > maxWarmupElements {
		return 0, fmt.Errorf("dims %v: %d elements, at most %d in a warm-up input", in.shape(rows), n, maxWarmupElements)
	}
	sources := 0
	for _, set := range []bool{in.ZeroData, in.RandomData, len(in.Data) > 0, in.InputDataFile != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return 0, fmt.Errorf("set exactly one of zero_data, random_data, data and input_data_file")
	}
	if len(in.Data) > 0 {
		if _, err := in.decodeData(name, dt); err != nil {
			return 0, err
		}
	}
	if in.InputDataFile != "" {
		if err := checkRelPath(in.InputDataFile); err != nil {
			return 0, fmt.Errorf("input_data_file: %v", err)
		}
	}
	return dt, nil
}

// tensor builds the input: rows copies of what Data or InputDataFile give
// (read from modelDir's warmup/), or a whole tensor of zeros or random
// values. rng feeds random_data.
func (in WarmupInput) tensor(name string, rows int64, rng *rand.Rand, modelDir string) (serving.Tensor, error) {
	dt, err := in.check(name, rows)
	if err != nil {
		return serving.Tensor{}, err
	}
	var item serving.Tensor
	switch {
	case len(in.Data) > 0:
		item, err = in.decodeData(name, dt)
	case in.InputDataFile != "":
		item, err = in.readDataFile(name, dt, modelDir)
	default:
		t, err := serving.Make(name, dt, in.shape(rows))
		if err == nil && in.RandomData {
			fillRandom(t, rng)
		}
		return t, err
	}
	if err != nil || rows == 0 {
		return item, err
	}
	raw := item.RawBytes()
	if int64(len(raw))*rows > maxRequestBytes {
		return serving.Tensor{}, fmt.Errorf("%d rows of %d bytes: more than the %d bytes a warm-up input may take", rows, len(raw), maxRequestBytes)
	}
	return serving.FromRaw(name, dt, in.shape(rows), bytes.Repeat(raw, int(rows)))
}

func (in WarmupInput) readDataFile(name string, dt serving.DataType, modelDir string) (serving.Tensor, error) {
	path, err := resolveWithin(modelDir, append([]string{"warmup"}, strings.Split(in.InputDataFile, "/")...)...)
	if err != nil {
		return serving.Tensor{}, fmt.Errorf("input_data_file: %v", err)
	}
	b, err := readLimited(path, maxRequestBytes)
	if err != nil {
		return serving.Tensor{}, fmt.Errorf("input_data_file %s: %v", in.InputDataFile, err)
	}
	t, err := serving.FromRaw(name, dt, in.Dims, b)
	if err != nil {
		return serving.Tensor{}, fmt.Errorf("input_data_file %s: %v", in.InputDataFile, err)
	}
	return t, nil
}

// decodeData reads "data" exactly as the HTTP API reads a V2 request, so a
// warm-up value means what it would mean in a request (nested arrays,
// "NaN" strings, FP16 from numbers).
func (in WarmupInput) decodeData(name string, dt serving.DataType) (serving.Tensor, error) {
	body, err := json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": name, "datatype": dt.String(), "shape": in.Dims, "data": in.Data,
	}}})
	if err != nil {
		return serving.Tensor{}, fmt.Errorf("data: %v", err)
	}
	req, err := oipjson.DecodeRequest(body, -1, oip.Limits{Elements: maxWarmupElements})
	if err != nil {
		return serving.Tensor{}, fmt.Errorf("data: %v", err)
	}
	return req.Inputs[0], nil
}

func fillRandom(t serving.Tensor, rng *rand.Rand) {
	unit := func() float32 { return rng.Float32()*2 - 1 }
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = unit()
		}
	case []float64:
		for i := range d {
			d[i] = float64(unit())
		}
	case []uint16:
		for i := range d {
			switch t.DataType {
			case serving.FP16:
				d[i] = serving.Float32ToFP16(unit())
			case serving.BF16:
				d[i] = serving.Float32ToBF16(unit())
			default:
				d[i] = uint16(rng.IntN(100))
			}
		}
	case []bool:
		for i := range d {
			d[i] = rng.IntN(2) == 1
		}
	case [][]byte:
		for i := range d {
			b := make([]byte, 8)
			for j := range b {
				b[j] = 'a' + byte(rng.IntN(26))
			}
			d[i] = b
		}
	case []uint8:
		fillInts(d, rng)
	case []uint32:
		fillInts(d, rng)
	case []uint64:
		fillInts(d, rng)
	case []int8:
		fillInts(d, rng)
	case []int16:
		fillInts(d, rng)
	case []int32:
		fillInts(d, rng)
	case []int64:
		fillInts(d, rng)
	}
}

// fillInts uses [0, 100): small enough to be a valid index or token id for
// most models, which random bits would not be.
func fillInts[T uint8 | uint32 | uint64 | int8 | int16 | int32 | int64](d []T, rng *rand.Rand) {
	for i := range d {
		d[i] = T(rng.IntN(100))
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// warmupRequest builds sample i's request for version v. Random data is
// seeded by model, version, sample and input, so a failing warm-up fails
// the same way when retried.
func warmupRequest(s WarmupSample, i int, v Version, maxBatch int32) (*serving.Request, error) {
	var req *serving.Request
	if s.RequestFile != "" {
		path, err := resolveWithin(v.ModelDir, strings.Split(s.RequestFile, "/")...)
		if err != nil {
			return nil, fmt.Errorf("request_file: %v", err)
		}
		if req, err = readRequestFile(path); err != nil {
			return nil, fmt.Errorf("request_file %s: %v", s.RequestFile, err)
		}
	} else {
		req = &serving.Request{}
		for _, name := range sortedKeys(s.Inputs) {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s", v.Model, v.Version, i, name)
			rng := rand.New(rand.NewPCG(h.Sum64(), 0x5e7e))
			t, err := s.Inputs[name].tensor(name, s.rows(maxBatch), rng, v.ModelDir)
			if err != nil {
				return nil, fmt.Errorf("input %q: %v", name, err)
			}
			req.Inputs = append(req.Inputs, t)
		}
	}
	req.Model, req.Version = v.Model, v.Version
	if req.Params == nil {
		req.Params = serving.Params{}
	}
	// A cache in the loaded chain must neither answer nor keep a warm-up.
	req.Params[serving.ParamCacheBypass] = true
	return req, nil
}

func readRequestFile(path string) (*serving.Request, error) {
	b, err := readLimited(path, maxRequestBytes)
	if err != nil {
		return nil, err
	}
	return oipjson.DecodeRequest(b, -1, oip.Limits{Elements: maxWarmupElements})
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}

// warmup runs every sample of c through p, Count times each, before p is
// given any traffic. The first failure ends it: a version that cannot
// answer its own warm-up is not served.
func warmup(ctx context.Context, p serving.Predictor, v Version, c *Config) error {
	for i, s := range c.Warmup {
		what := fmt.Sprintf("warm-up sample %d%s", i, quoted(s.Name))
		req, err := warmupRequest(s, i, v, int32(c.MaxBatchSize()))
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "%s: %v", what, err)
		}
		runs := max(1, s.Count)
		for run := range runs {
			if _, err := predict(ctx, p, req); err != nil {
				return serving.Errorf(serving.CodeOf(err), "%s, run %d of %d: %w", what, run+1, runs, err)
			}
		}
	}
	return nil
}

// predict calls p, turning a panic into an Internal error: a model that
// panics on its warm-up fails its load, not the process.
func predict(ctx context.Context, p serving.Predictor, req *serving.Request) (resp *serving.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, serving.Errorf(serving.Internal, "panic: %v", r)
		}
	}()
	resp, err = p.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "no response and no error")
	}
	return resp, err
}
