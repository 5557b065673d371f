package onnx_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The ai.onnx.ml fixtures (testdata/models/tabular, shapes as skl2onnx and
// onnxmltools emit them) answer in-process exactly as ONNX Runtime does
// when run directly, whatever subset of outputs a request asks for.

// wantOutputs is what each fixture serves: datatype, shape and labels.
var wantOutputs = map[string][]serving.TensorSpec{
	"linear_str": {
		{Name: "label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "probabilities", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"legit", "fraud"}},
	},
	"logreg_int_zipmap": {
		{Name: "output_label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"0", "1"}},
	},
	"logreg_int_nozipmap": {
		{Name: "output_label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"0", "1"}},
	},
	"logreg_str_zipmap": {
		{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"bronze", "gold", "silver"}},
	},
	"linear_reg": {{Name: "variable", DataType: serving.FP32, Shape: []int64{-1, 1}}},
	"rf_int_zipmap": {
		{Name: "output_label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"0", "1", "2"}},
	},
	"tree_str_zipmap": {
		{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"no", "yes"}},
	},
	"xgb_binary": {
		{Name: "label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "probabilities", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"0", "1"}},
	},
	"lgbm_multi_zipmap": {
		{Name: "label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 4}, Labels: []string{"0", "1", "2", "3"}},
	},
	"rf_reg":  {{Name: "variable", DataType: serving.FP32, Shape: []int64{-1, 1}}},
	"xgb_reg": {{Name: "variable", DataType: serving.FP32, Shape: []int64{-1, 1}}},
	"svm_str_zipmap": {
		{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"cat", "dog", "fox"}},
	},
	"pipeline_imputer_scaler": {
		{Name: "output_label", DataType: serving.Int64, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"0", "1"}},
	},
	"normalizer_binarizer": {
		{Name: "normalized", DataType: serving.FP32, Shape: []int64{-1, 4}},
		{Name: "binarized", DataType: serving.FP32, Shape: []int64{-1, 4}},
	},
	"onehot":          {{Name: "variable", DataType: serving.FP32, Shape: []int64{-1, 7}}},
	"label_encoder":   {{Name: "code", DataType: serving.Int64, Shape: []int64{-1}}, {Name: "text_out", DataType: serving.Bytes, Shape: []int64{-1}}},
	"category_mapper": {{Name: "city_id", DataType: serving.Int64, Shape: []int64{-1, 1}}, {Name: "city_out", DataType: serving.Bytes, Shape: []int64{-1, 1}}},
	"array_feature_extractor": {
		{Name: "picked", DataType: serving.FP32, Shape: []int64{-1, 2}},
		{Name: "picked_s", DataType: serving.Bytes, Shape: []int64{-1, 2}},
	},
	"loan_columns": {
		{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"high", "low"}},
	},
	"unservable_outputs": {{Name: "y", DataType: serving.FP32, Shape: []int64{-1, 4}}},
}

func init() {
	var d []serving.TensorSpec
	for _, n := range []struct {
		name string
		dt   serving.DataType
	}{{"bool", serving.Bool}, {"uint8", serving.Uint8}, {"uint16", serving.Uint16}, {"uint32", serving.Uint32},
		{"uint64", serving.Uint64}, {"int8", serving.Int8}, {"int16", serving.Int16}, {"int32", serving.Int32},
		{"int64", serving.Int64}, {"fp16", serving.FP16}, {"bf16", serving.BF16}, {"fp64", serving.FP64}, {"str", serving.Bytes}} {
		d = append(d, serving.TensorSpec{Name: "as_" + n.name, DataType: n.dt, Shape: []int64{-1, 3}})
	}
	wantOutputs["dtypes"] = append(d,
		serving.TensorSpec{Name: "label", DataType: serving.Bytes, Shape: []int64{-1}},
		serving.TensorSpec{Name: "scores", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"legit", "fraud"}})
}

func loadCase(t *testing.T, c tabulartest.Case, opts ...onnx.Option) *onnx.Model {
	t.Helper()
	requireORT(t)
	m, err := onnx.Load(c.Path, opts...)
	if err != nil {
		t.Fatalf("Load %s (%s): %v", c.Name, c.Mimics, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestTabularMetadata(t *testing.T) {
	for _, c := range tabulartest.Servable(t) {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := wantOutputs[c.Name]
			if !ok {
				t.Fatalf("no expected outputs for fixture %s", c.Name)
			}
			got := loadCase(t, c, onnx.WithLogger(slog.New(slog.DiscardHandler))).Metadata().Outputs
			if len(got) != len(want) {
				t.Fatalf("outputs %v, want %v", got, want)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Name != w.Name || g.DataType != w.DataType || !slices.Equal(g.Shape, w.Shape) || !slices.Equal(g.Labels, w.Labels) {
					t.Errorf("output %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestTabularMatchesRawORT(t *testing.T) {
	ctx := context.Background()
	for _, c := range tabulartest.Servable(t) {
		t.Run(c.Name, func(t *testing.T) {
			m := loadCase(t, c, onnx.WithLogger(slog.New(slog.DiscardHandler)))
			md := m.Metadata()
			// All outputs, each alone, and all in reverse order: a string
			// output must work whichever others a request selects.
			asks := [][]string{nil}
			var all []string
			for _, o := range md.Outputs {
				asks = append(asks, []string{o.Name})
				all = append(all, o.Name)
			}
			slices.Reverse(all)
			asks = append(asks, all)
			for _, ask := range asks {
				resp, err := m.Predict(ctx, c.Request(ask...))
				if err != nil {
					t.Fatalf("Predict(outputs %v): %v", ask, err)
				}
				if n := max(len(ask), len(md.Outputs)*min(1, 1-len(ask))); len(resp.Outputs) != n {
					t.Fatalf("outputs %v: %d outputs, want %d", ask, len(resp.Outputs), n)
				}
				tabulartest.CheckResponse(t, c.Path, c.Inputs, md, resp.Outputs)
			}
		})
	}
}

// A request whose small numeric data shares an allocation with Go pointers
// (as a decoder that carves arrays out of its request struct makes it) runs
// on a model with a string output: cgo used to refuse it with "Go pointer
// to unpinned Go pointer", a 500 on every REST request to such a model.
func TestCarvedInputWithStringOutput(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "cgocheck=0") {
		t.Fatal("GODEBUG turns off the cgo pointer checks this test is about")
	}
	c := tabulartest.Find(t, "linear_str")
	m := loadCase(t, c)
	type decoded struct {
		req   *serving.Request
		words [16]uint64
	}
	d := &decoded{req: &serving.Request{}}
	in, _ := serving.Values[float32](c.Inputs[0])
	words := in[:6] // two rows
	data := unsafe.Slice((*float32)(unsafe.Pointer(&d.words[0])), len(words))
	copy(data, words)
	x, err := serving.NewTensor("input", []int64{2, 3}, data)
	if err != nil {
		t.Fatal(err)
	}
	d.req.Inputs = []serving.Tensor{x}
	for _, ask := range [][]string{nil, {"probabilities"}, {"label"}} {
		d.req.Outputs = ask
		resp, err := m.Predict(context.Background(), d.req)
		if err != nil {
			t.Fatalf("outputs %v: %v", ask, err)
		}
		tabulartest.CheckResponse(t, c.Path, []serving.Tensor{x}, m.Metadata(), resp.Outputs)
	}
}

// A model with outputs servekit cannot serve loads, serves the others, says
// which and why in the metadata and the log, and refuses a request for one
// with that reason.
func TestUnservedOutputs(t *testing.T) {
	c := tabulartest.Find(t, "unservable_outputs")
	var log bytes.Buffer
	m := loadCase(t, c, onnx.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	md := m.Metadata()
	if len(md.Unserved) != 2 {
		t.Fatalf("Unserved = %+v, want parts and maybe", md.Unserved)
	}
	for i, want := range []struct{ name, typ string }{{"parts", "seq(tensor(float))"}, {"maybe", "optional(tensor(float))"}} {
		u := md.Unserved[i]
		if u.Name != want.name || !strings.Contains(u.Reason, want.typ) {
			t.Errorf("Unserved[%d] = %+v, want %s naming %s", i, u, want.name, want.typ)
		}
		if !strings.Contains(log.String(), "output="+want.name) {
			t.Errorf("the load did not log unserved output %s:\n%s", want.name, log.String())
		}
		_, err := m.Predict(context.Background(), c.Request(want.name))
		if serving.CodeOf(err) != serving.Unimplemented || !strings.Contains(err.Error(), want.typ) {
			t.Errorf("asking for %s: %v, want Unimplemented naming %s", want.name, err, want.typ)
		}
	}
	resp, err := m.Predict(context.Background(), c.Request())
	if err != nil {
		t.Fatal(err)
	}
	tabulartest.CheckResponse(t, c.Path, c.Inputs, md, resp.Outputs)
}

// A model whose input is a map (skl2onnx's DictVectorizer) cannot be fed by
// any request: the load fails naming the input and its type.
func TestMapInputRefused(t *testing.T) {
	requireORT(t)
	c := tabulartest.Find(t, "dict_input")
	_, err := onnx.Load(c.Path)
	if serving.CodeOf(err) != serving.Unimplemented || !strings.Contains(err.Error(), `input "dict" is map(string,tensor(float))`) {
		t.Fatalf("Load: %v, want Unimplemented naming the input and its type", err)
	}
}

// The ZipMap rewrite gives the same answers from LoadBytes as from Load.
func TestZipMapLoadBytes(t *testing.T) {
	c := tabulartest.Find(t, "rf_int_zipmap")
	m := loadCase(t, c)
	b := readFile(t, c.Path)
	mb := loadBytes(t, c.Name, b, nil)
	want, err := m.Predict(context.Background(), c.Request())
	if err != nil {
		t.Fatal(err)
	}
	got, err := mb.Predict(context.Background(), c.Request())
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Outputs {
		if err := tabulartest.Same(got.Outputs[i], want.Outputs[i]); err != nil {
			t.Error(err)
		}
	}
	if !slices.Equal(mb.Metadata().Outputs[1].Labels, []string{"0", "1", "2"}) {
		t.Errorf("labels from LoadBytes: %v", mb.Metadata().Outputs[1].Labels)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A model served through the ZipMap rewrite, with per-column inputs of
// mixed datatypes and a string label, keeps the contract of every
// Predictor.
func TestTabularConformance(t *testing.T) {
	c := tabulartest.Find(t, "loan_columns")
	servingtest.Conformance(t, servingtest.Config{
		New:           func(t *testing.T) serving.Predictor { return loadCase(t, c) },
		Request:       func() *serving.Request { return c.Request() },
		Deterministic: true,
	})
}
