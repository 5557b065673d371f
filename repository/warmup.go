package repository

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
)

// tritonTypes maps Triton's config spelling of datatypes to the protocol's.
var tritonTypes = map[string]string{"TYPE_STRING": "BYTES"}

func parseWarmupType(s string) (serving.DataType, error) {
	u := strings.ToUpper(s)
	if t, ok := tritonTypes[u]; ok {
		u = t
	}
	return serving.ParseDataType(strings.TrimPrefix(u, "TYPE_"))
}

// check validates the input without building its data.
func (in WarmupInput) check(name string) (serving.DataType, error) {
	dt, err := parseWarmupType(in.DataType)
	if err != nil {
		return 0, fmt.Errorf("data_type %q: want a datatype such as FP32, INT64, BYTES (or TYPE_FP32)", in.DataType)
	}
	if in.Dims == nil {
		return 0, fmt.Errorf("dims is required ([] for a scalar)")
	}
	n, err := serving.NumElements(in.Dims)
	if err != nil {
		return 0, fmt.Errorf("dims %v: %v", in.Dims, err)
	}
	if n > maxWarmupElements {
		return 0, fmt.Errorf("dims %v: %d elements, at most %d in a warm-up input", in.Dims, n, maxWarmupElements)
	}
	sources := 0
	for _, set := range []bool{in.ZeroData, in.RandomData, len(in.Data) > 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return 0, fmt.Errorf("set exactly one of zero_data, random_data and data")
	}
	if len(in.Data) > 0 {
		if _, err := in.decodeData(name, dt); err != nil {
			return 0, err
		}
	}
	return dt, nil
}

// tensor builds the input. rng feeds random_data.
func (in WarmupInput) tensor(name string, rng *rand.Rand) (serving.Tensor, error) {
	dt, err := in.check(name)
	if err != nil {
		return serving.Tensor{}, err
	}
	if len(in.Data) > 0 {
		return in.decodeData(name, dt)
	}
	t, err := serving.Make(name, dt, in.Dims)
	if err != nil {
		return serving.Tensor{}, err
	}
	if in.RandomData {
		fillRandom(t, rng)
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
	req, err := httpapi.DecodeRequest(body, -1, maxWarmupElements)
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
func warmupRequest(s WarmupSample, i int, v Version) (*serving.Request, error) {
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
			t, err := s.Inputs[name].tensor(name, rng)
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRequestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRequestBytes {
		return nil, fmt.Errorf("more than %d bytes", maxRequestBytes)
	}
	return httpapi.DecodeRequest(b, -1, maxWarmupElements)
}

// warmup runs every sample of c through p, Count times each, before p is
// given any traffic. The first failure ends it: a version that cannot
// answer its own warm-up is not served.
func warmup(ctx context.Context, p serving.Predictor, v Version, samples []WarmupSample) error {
	for i, s := range samples {
		what := fmt.Sprintf("warm-up sample %d%s", i, quoted(s.Name))
		req, err := warmupRequest(s, i, v)
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
