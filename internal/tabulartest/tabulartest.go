// Package tabulartest is the tests' view of the ai.onnx.ml fixtures in
// testdata/models/tabular: models built (by the committed gen.py) in the
// shapes skl2onnx and onnxmltools emit, the inputs to feed each, and an
// oracle that runs the same model on ONNX Runtime directly, through the
// binding, with none of servekit's code on the path.
//
// Every transport's test (in-process, REST, gRPC, the batch job) checks its
// answers with Check, so "bit for bit equal to ONNX Runtime" means the same
// thing everywhere: every element's bits (NaN payloads, -0) for numbers,
// every byte for strings, and for an output ONNX Runtime gives as a
// sequence of maps (ZipMap), row r's map value under key Labels[c] equal to
// column c of row r.
package tabulartest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
)

// Dir is the folder of the fixtures.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models", "tabular")
}

// Case is one fixture and the request the tests send it.
type Case struct {
	Name   string // file name without .onnx
	Mimics string // the converter and estimator whose export it copies
	Path   string
	Inputs []serving.Tensor
}

// Request returns a fresh request of the case's inputs, asking for outputs
// (all when none).
func (c Case) Request(outputs ...string) *serving.Request {
	ins := make([]serving.Tensor, len(c.Inputs))
	for i, t := range c.Inputs {
		ins[i] = t.Clone()
	}
	return &serving.Request{ID: c.Name, Model: c.Name, Inputs: ins, Outputs: outputs}
}

// Rows is the request's batch size.
func (c Case) Rows() int64 { return c.Inputs[0].Shape[0] }

type manifest struct {
	Cases []struct {
		Name   string `json:"name"`
		Mimics string `json:"mimics"`
		Inputs []struct {
			Name     string  `json:"name"`
			DataType string  `json:"datatype"`
			Shape    []int64 `json:"shape"`
			Data     []any   `json:"data"`
		} `json:"inputs"`
	} `json:"cases"`
}

// Cases reads the manifest the generator wrote, cases.json.
func Cases(t testing.TB) []Case {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(), "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	var out []Case
	for _, mc := range m.Cases {
		c := Case{Name: mc.Name, Mimics: mc.Mimics, Path: filepath.Join(Dir(), mc.Name+".onnx")}
		for _, in := range mc.Inputs {
			tn, err := tensorOf(in.Name, in.DataType, in.Shape, in.Data)
			if err != nil {
				t.Fatalf("cases.json %s input %s: %v", mc.Name, in.Name, err)
			}
			c.Inputs = append(c.Inputs, tn)
		}
		out = append(out, c)
	}
	return out
}

// Servable returns the cases whose inputs a request can carry (all but the
// one whose model takes a map).
func Servable(t testing.TB) []Case {
	var out []Case
	for _, c := range Cases(t) {
		if len(c.Inputs) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// Find returns the named case.
func Find(t testing.TB, name string) Case {
	t.Helper()
	for _, c := range Cases(t) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no fixture %q", name)
	return Case{}
}

func tensorOf(name, dt string, shape []int64, data []any) (serving.Tensor, error) {
	switch dt {
	case "FP32":
		v := make([]float32, len(data))
		for i, x := range data {
			if s, ok := x.(string); ok && s == "NaN" {
				v[i] = float32(math.NaN())
				continue
			}
			f, ok := x.(float64)
			if !ok {
				return serving.Tensor{}, fmt.Errorf("element %d is %T", i, x)
			}
			v[i] = float32(f)
		}
		return serving.NewTensor(name, shape, v)
	case "INT64":
		v := make([]int64, len(data))
		for i, x := range data {
			f, ok := x.(float64)
			if !ok {
				return serving.Tensor{}, fmt.Errorf("element %d is %T", i, x)
			}
			v[i] = int64(f)
		}
		return serving.NewTensor(name, shape, v)
	case "BYTES":
		v := make([]string, len(data))
		for i, x := range data {
			s, ok := x.(string)
			if !ok {
				return serving.Tensor{}, fmt.Errorf("element %d is %T", i, x)
			}
			v[i] = s
		}
		return serving.NewStrings(name, shape, v)
	}
	return serving.Tensor{}, fmt.Errorf("datatype %s", dt)
}

// Answer is ONNX Runtime's own answer for one output: a tensor, or for a
// sequence of maps one map per row.
type Answer struct {
	Tensor serving.Tensor
	Maps   []map[string]float32 // keys as Labels has them (int64 keys in decimal)
}

// Raw runs the fixture at path on ONNX Runtime directly and returns the
// outputs named (each must be a tensor or a sequence of maps). half lists
// the FP16/BF16 outputs with their shape: the binding cannot read those
// back unless they are preallocated.
func Raw(t testing.TB, path string, inputs []serving.Tensor, outputs []serving.TensorSpec) map[string]Answer {
	t.Helper()
	orttest.Require(t)
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Name
	}
	outNames := make([]string, len(outputs))
	for i, o := range outputs {
		outNames[i] = o.Name
	}
	s, err := ort.NewDynamicAdvancedSession(path, names, outNames, nil)
	if err != nil {
		t.Fatalf("raw ONNX Runtime session for %s: %v", path, err)
	}
	defer s.Destroy()
	ins := make([]ort.Value, len(inputs))
	defer destroy(ins)
	for i, in := range inputs {
		if ins[i], err = rawInput(in); err != nil {
			t.Fatalf("raw input %s: %v", in.Name, err)
		}
	}
	outs := make([]ort.Value, len(outputs))
	defer destroy(outs)
	batch := inputs[0].Shape[0]
	for i, o := range outputs {
		if o.DataType == serving.FP16 || o.DataType == serving.BF16 {
			shape := slices.Clone(o.Shape)
			shape[0] = batch
			n := int64(1)
			for _, d := range shape {
				n *= d
			}
			var typ ort.TensorElementDataType = ort.TensorElementDataTypeFloat16
			if o.DataType == serving.BF16 {
				typ = ort.TensorElementDataTypeBFloat16
			}
			if outs[i], err = ort.NewCustomDataTensor(ort.Shape(shape), make([]byte, 2*n), typ); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Run(ins, outs); err != nil {
		t.Fatalf("raw ONNX Runtime run of %s: %v", path, err)
	}
	ans := make(map[string]Answer, len(outputs))
	for i, o := range outputs {
		a, err := rawAnswer(o, outs[i])
		if err != nil {
			t.Fatalf("raw output %s: %v", o.Name, err)
		}
		ans[o.Name] = a
	}
	return ans
}

func destroy(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}

// rawInput copies a tensor into an ONNX Runtime value the plain way.
func rawInput(in serving.Tensor) (ort.Value, error) {
	shape := ort.Shape(slices.Clone(in.Shape))
	switch d := in.Data().(type) {
	case []float32:
		return ort.NewTensor(shape, slices.Clone(d))
	case []int64:
		return ort.NewTensor(shape, slices.Clone(d))
	case [][]byte:
		v, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		s := make([]string, len(d))
		for i := range d {
			s[i] = string(d[i])
		}
		return v, v.SetContents(s)
	}
	return nil, fmt.Errorf("no raw input for %v", in.DataType)
}

func rawAnswer(spec serving.TensorSpec, v ort.Value) (Answer, error) {
	shape := []int64(v.GetShape())
	mk := func(data any) (Answer, error) {
		t, err := serving.FromSlice(spec.Name, spec.DataType, shape, data)
		return Answer{Tensor: t}, err
	}
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return mk(x.GetData())
	case *ort.Tensor[float64]:
		return mk(x.GetData())
	case *ort.Tensor[int64]:
		return mk(x.GetData())
	case *ort.Tensor[int32]:
		return mk(x.GetData())
	case *ort.Tensor[int16]:
		return mk(x.GetData())
	case *ort.Tensor[int8]:
		return mk(x.GetData())
	case *ort.Tensor[uint8]:
		return mk(x.GetData())
	case *ort.Tensor[uint16]:
		return mk(x.GetData())
	case *ort.Tensor[uint32]:
		return mk(x.GetData())
	case *ort.Tensor[uint64]:
		return mk(x.GetData())
	case *ort.Tensor[bool]:
		return mk(x.GetData())
	case *ort.CustomDataTensor:
		b := x.GetData()
		return mk(slices.Clone(unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)))
	case *ort.StringTensor:
		s, err := x.GetContents()
		if err != nil {
			return Answer{}, err
		}
		b := make([][]byte, len(s))
		for i := range s {
			b[i] = []byte(s[i])
		}
		return mk(b)
	case *ort.Sequence:
		return rawMaps(x)
	}
	return Answer{}, fmt.Errorf("unexpected value %T", v)
}

func rawMaps(s *ort.Sequence) (Answer, error) {
	vals, err := s.GetValues()
	if err != nil {
		return Answer{}, err
	}
	var a Answer
	for _, v := range vals {
		m, ok := v.(*ort.Map)
		if !ok {
			return Answer{}, fmt.Errorf("sequence of %T, want maps", v)
		}
		kv, vv, err := m.GetKeysAndValues()
		if err != nil {
			return Answer{}, err
		}
		var keys []string
		switch k := kv.(type) {
		case *ort.Tensor[int64]:
			for _, x := range k.GetData() {
				keys = append(keys, strconv.FormatInt(x, 10))
			}
		case *ort.StringTensor:
			if keys, err = k.GetContents(); err != nil {
				return Answer{}, err
			}
		default:
			return Answer{}, fmt.Errorf("map keys %T", kv)
		}
		values, ok := vv.(*ort.Tensor[float32])
		if !ok || len(values.GetData()) != len(keys) {
			return Answer{}, fmt.Errorf("map values %T", vv)
		}
		row := make(map[string]float32, len(keys))
		for i, k := range keys {
			row[k] = values.GetData()[i]
		}
		a.Maps = append(a.Maps, row)
	}
	return a, nil
}

// Check compares servekit's answer for one output with ONNX Runtime's.
func Check(spec serving.TensorSpec, got serving.Tensor, want Answer) error {
	if want.Maps == nil {
		return Same(got, want.Tensor)
	}
	if got.DataType != serving.FP32 || len(got.Shape) != 2 || got.Shape[0] != int64(len(want.Maps)) || got.Shape[1] != int64(len(spec.Labels)) {
		return fmt.Errorf("output %q: got %v%v, want FP32 [%d %d] for a sequence of %d maps", spec.Name, got.DataType, got.Shape, len(want.Maps), len(spec.Labels), len(want.Maps))
	}
	v, _ := serving.Values[float32](got)
	c := len(spec.Labels)
	for r, row := range want.Maps {
		if len(row) != c {
			return fmt.Errorf("output %q row %d: ONNX Runtime's map has %d keys, the labels are %d", spec.Name, r, len(row), c)
		}
		for j, l := range spec.Labels {
			w, ok := row[l]
			if !ok {
				return fmt.Errorf("output %q row %d: ONNX Runtime's map has no key %q", spec.Name, r, l)
			}
			if math.Float32bits(v[r*c+j]) != math.Float32bits(w) {
				return fmt.Errorf("output %q row %d column %d (%s): got %v, ONNX Runtime %v", spec.Name, r, j, l, v[r*c+j], w)
			}
		}
	}
	return nil
}

// Same compares two tensors bit for bit.
func Same(got, want serving.Tensor) error {
	if got.Name != want.Name || got.DataType != want.DataType || !slices.Equal(got.Shape, want.Shape) {
		return fmt.Errorf("got %s %v%v, want %s %v%v", got.Name, got.DataType, got.Shape, want.Name, want.DataType, want.Shape)
	}
	if got.DataType == serving.Bytes {
		g, _ := serving.Values[[]byte](got)
		w, _ := serving.Values[[]byte](want)
		for i := range w {
			if string(g[i]) != string(w[i]) {
				return fmt.Errorf("output %q element %d: got %q, want %q", got.Name, i, g[i], w[i])
			}
		}
		return nil
	}
	g, w := got.RawBytes(), want.RawBytes()
	if string(g) != string(w) {
		size := got.DataType.Size()
		for i := 0; i+size <= len(w); i += size {
			if string(g[i:i+size]) != string(w[i:i+size]) {
				a, _ := got.Float64At(i / size)
				b, _ := want.Float64At(i / size)
				return fmt.Errorf("output %q element %d: got %v, want %v (bits differ)", got.Name, i/size, a, b)
			}
		}
	}
	return nil
}

// CheckResponse compares every output of resp with ONNX Runtime's answer
// for the same inputs (the model at path, specs from its metadata).
func CheckResponse(t testing.TB, path string, inputs []serving.Tensor, md serving.Metadata, outs []serving.Tensor) {
	t.Helper()
	var specs []serving.TensorSpec
	for _, o := range outs {
		s, ok := md.Output(o.Name)
		if !ok {
			t.Fatalf("answer has output %q the metadata does not list", o.Name)
		}
		specs = append(specs, s)
	}
	raw := Raw(t, path, inputs, specs)
	for i, o := range outs {
		if err := Check(specs[i], o, raw[o.Name]); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
}

// TopK is what Triton's classification extension answers for ONNX
// Runtime's output: per row, the k largest values, highest first (ties by
// index), as printf("%f") writes them, with their index and label
// ("value:index" without labels). It is written apart from servekit's
// own, as the tests' second opinion.
func TopK(spec serving.TensorSpec, want Answer, k int) []string {
	var rows [][]float64
	if want.Maps != nil {
		for _, m := range want.Maps {
			var row []float64
			for _, l := range spec.Labels {
				row = append(row, float64(m[l]))
			}
			rows = append(rows, row)
		}
	} else {
		t := want.Tensor
		per := 1
		for _, d := range t.Shape[1:] {
			per *= int(d)
		}
		for r := range int(t.Shape[0]) {
			var row []float64
			for j := range per {
				v, _ := t.Float64At(r*per + j)
				row = append(row, v)
			}
			rows = append(rows, row)
		}
	}
	var out []string
	for _, row := range rows {
		idx := make([]int, len(row))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return 0
		})
		for _, j := range idx[:min(k, len(idx))] {
			s := fmt.Sprintf("%f:%d", row[j], j)
			if j < len(spec.Labels) {
				s += ":" + spec.Labels[j]
			}
			out = append(out, s)
		}
	}
	return out
}
