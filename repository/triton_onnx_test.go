package repository_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func mustModel(t *testing.T) func([]byte, error) string {
	return func(b []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// classifierWeights are the pooled classifier's: 5 classes over 3
// channels.
var (
	classifierW = []float32{1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0, -1, 0, 1}
	classifierB = []float32{0, 0.1, -0.1, 0.2, 0}
)

// classify is the pooled classifier in Go: channel means, the 1×1
// convolution, softmax.
func classify(img []float32, channels, pixels int) []float32 {
	var logits []float64
	for k := range len(classifierB) {
		sum := float64(classifierB[k])
		for c := range channels {
			var mean float64
			for _, v := range img[c*pixels : (c+1)*pixels] {
				mean += float64(v)
			}
			sum += float64(classifierW[k*channels+c]) * mean / float64(pixels)
		}
		logits = append(logits, sum)
	}
	var total float64
	for _, l := range logits {
		total += math.Exp(l)
	}
	out := make([]float32, len(logits))
	for i, l := range logits {
		out[i] = float32(math.Exp(l) / total)
	}
	return out
}

// Triton's example repository, with models the project builds, on ONNX
// Runtime: the simple add/sub model as configured (max_batch_size 8, rows
// beyond refused), and the densenet-style classifier whose configuration
// reshapes the model's [n, 5, 1, 1] output to [n, 5], or, unbatched, its
// input and output both.
func TestTritonRepositoryONNX(t *testing.T) {
	orttest.Require(t)
	model := mustModel(t)
	root := tree(t, map[string]string{
		"simple/config.pbtxt":        simplePbtxt,
		"simple/1/model.onnx":        model(onnxbuild.AddSub(onnxbuild.Int32, 16)),
		"densenet_onnx/config.pbtxt": densenetPbtxt + `model_warmup [ { name: "two images" batch_size: 2 inputs { key: "data_0" value: { data_type: TYPE_FP32 dims: [ 3, 4, 4 ] random_data: true } } } ]`,
		"densenet_onnx/1/model.onnx": model(onnxbuild.PooledClassifier(3, 4, 4, classifierW, classifierB)),
		"densenet_old/config.pbtxt":  strings.Replace(densenetUnbatchedPbtxt, `"densenet_onnx"`, `"densenet_old"`, 1),
		"densenet_old/1/model.onnx":  model(onnxbuild.PooledClassifier(3, 4, 4, classifierW, classifierB)),
	})
	r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, m := range []string{"simple", "densenet_onnx", "densenet_old"} {
		if got := states(r, m); got != "1:ready" {
			t.Fatalf("%s: %s (%+v)", m, got, r.Status())
		}
	}
	ctx := context.Background()

	simple, _ := r.Router("simple")
	md, _ := serving.MetadataOf(simple)
	if in, _ := md.Input("INPUT0"); in.DataType != serving.Int32 || !slices.Equal(in.Shape, []int64{-1, 16}) {
		t.Errorf("simple's INPUT0 as clients see it: %+v", in)
	}
	rows := func(n int, f func(i int) int32) serving.Tensor {
		v := make([]int32, n*16)
		for i := range v {
			v[i] = f(i)
		}
		t, _ := serving.NewTensor("", []int64{int64(n), 16}, v)
		return t
	}
	a, b := rows(2, func(i int) int32 { return int32(i) }), rows(2, func(i int) int32 { return 1 })
	a.Name, b.Name = "INPUT0", "INPUT1"
	resp, err := simple.Predict(ctx, &serving.Request{Model: "simple", Inputs: []serving.Tensor{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := resp.Output("OUTPUT0")
	diff, _ := resp.Output("OUTPUT1")
	s, _ := serving.Values[int32](sum)
	d, _ := serving.Values[int32](diff)
	if s[0] != 1 || s[31] != 32 || d[0] != -1 || d[31] != 30 {
		t.Errorf("add/sub: %v %v", s, d)
	}
	a9, b9 := rows(9, func(int) int32 { return 0 }), rows(9, func(int) int32 { return 0 })
	a9.Name, b9.Name = "INPUT0", "INPUT1"
	if _, err := simple.Predict(ctx, &serving.Request{Model: "simple", Inputs: []serving.Tensor{a9, b9}}); serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "max_batch_size is 8") {
		t.Errorf("9 rows to a max_batch_size 8 model: %v", err)
	}

	img := make([]float32, 2*3*16)
	for i := range img {
		img[i] = float32(i%7) / 7
	}
	for _, tc := range []struct {
		model string
		shape []int64
		want  []int64
	}{
		{"densenet_onnx", []int64{2, 3, 4, 4}, []int64{2, 5}},
		{"densenet_old", []int64{3, 4, 4}, []int64{5}},
	} {
		rt, _ := r.Router(tc.model)
		n, _ := serving.NumElements(tc.shape)
		x, _ := serving.NewTensor("data_0", tc.shape, img[:n])
		resp, err := rt.Predict(ctx, &serving.Request{Model: tc.model, Inputs: []serving.Tensor{x}})
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		out, _ := resp.Output("fc6_1")
		got, _ := serving.Values[float32](out)
		want := classify(img[:48], 3, 16)
		if !slices.Equal(out.Shape, tc.want) || math.Abs(float64(got[0]-want[0])) > 1e-5 || math.Abs(float64(got[4]-want[4])) > 1e-5 {
			t.Errorf("%s: fc6_1 %v %v, want shape %v and %v", tc.model, out.Shape, got, tc.want, want)
		}
		md, _ := serving.MetadataOf(rt)
		if o, _ := md.Output("fc6_1"); len(o.Shape) != len(tc.want) {
			t.Errorf("%s: metadata says fc6_1 is %v, as the configuration says", tc.model, o.Shape)
		}
	}
}

// A configuration that does not fit its model fails the version, with
// Triton's reasons, before it gets traffic.
func TestTritonConfigDoesNotFitModel(t *testing.T) {
	orttest.Require(t)
	model := mustModel(t)
	addsub := model(onnxbuild.AddSub(onnxbuild.Int32, 16))
	fixed := model(onnxbuild.Identity(onnxbuild.Float, 4))
	for name, tc := range map[string]struct{ model, config, want string }{
		"data type":   {addsub, strings.ReplaceAll(simplePbtxt, "TYPE_INT32", "TYPE_FP32"), `input "INPUT0": data_type TYPE_FP32, but the model's is INT32`},
		"dims":        {addsub, strings.ReplaceAll(simplePbtxt, "[ 16 ]", "[ 8 ]"), `input "INPUT0": the model's shape [-1 16] does not match the configured [8]`},
		"unbatched":   {addsub, strings.Replace(simplePbtxt, "max_batch_size: 8", "max_batch_size: 0", 1), `the model's shape [-1 16] does not match the configured [16]`},
		"no input":    {addsub, `max_batch_size: 8 input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] } ]`, `the model's input "INPUT1" is not listed`},
		"unknown":     {addsub, `input [ { name: "INPUT2" data_type: TYPE_INT32 dims: [ 16 ] } ]`, `input "INPUT2": the model has no such input`},
		"no batch":    {fixed, `max_batch_size: 4`, `max_batch_size > 0, but the model's input "x" has shape [4]`},
		"no batch io": {fixed, `max_batch_size: 4 input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]`, "no dynamic first (batch) dimension"},
		"reshape":     {fixed, `output [ { name: "y" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 2, 2 ] } } ]`, `output "y": the model's shape [4] does not match the configured [2 2]`},
	} {
		root := tree(t, map[string]string{"simple/config.pbtxt": tc.config, "simple/1/model.onnx": tc.model})
		r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		vs := versionStatus(r, "simple", "1")
		if vs.State != repository.StateFailed || !strings.Contains(vs.Reason, "config.pbtxt does not fit the model: ") || !strings.Contains(vs.Reason, tc.want) {
			t.Errorf("%s: %s %q\nwant the reason %q", name, vs.State, vs.Reason, tc.want)
		}
		r.Close()
	}
}

// Outputs the configuration does not list are not served; those it lists
// are what an unselective request gets.
func TestTritonOutputsListed(t *testing.T) {
	orttest.Require(t)
	root := tree(t, map[string]string{
		"m/config.pbtxt": `max_batch_size: 4
input [ { name: "a" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "b" data_type: TYPE_INT64 dims: [ 2 ] } ]
output [ { name: "b2" data_type: TYPE_INT64 dims: [ 2 ] } ]`,
		"m/1/model.onnx": mustModel(t)(onnxbuild.MultiIO()),
	})
	r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rt, _ := r.Router("m")
	a, _ := serving.NewTensor("a", []int64{1, 4}, []float32{1, 2, 3, 4})
	b, _ := serving.NewTensor("b", []int64{1, 2}, []int64{5, 6})
	resp, err := rt.Predict(context.Background(), &serving.Request{Model: "m", Inputs: []serving.Tensor{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "b2" {
		t.Errorf("outputs %v, want only b2", resp.Outputs)
	}
	_, err = rt.Predict(context.Background(), &serving.Request{Model: "m", Inputs: []serving.Tensor{a, b}, Outputs: []string{"sum"}})
	if serving.CodeOf(err) != serving.NotFound {
		t.Errorf("asking for an output the configuration leaves out: %v, want NotFound", err)
	}
}

// A model served through its configuration keeps the Predictor contract:
// here servingtest.Linear(4) seen, through reshapes, as taking and giving
// [n, 2, 2].
func TestTritonShapedConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			root := tree(t, map[string]string{"m/1/model.onnx": "ok", "m/config.pbtxt": `max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } } ]`})
			r := open(t, root, newBatchableLoader().loader())
			rt, _ := r.Router("m")
			return rt
		},
		Request: func() *serving.Request {
			x, _ := serving.NewTensor("x", []int64{3, 2, 2}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
			return &serving.Request{Model: "m", Inputs: []serving.Tensor{x}}
		},
		Deterministic: true,
	})
}

// A reshape with a dynamic dim takes its size from each request.
func TestTritonReshapeDynamic(t *testing.T) {
	root := tree(t, map[string]string{"m/1/model.onnx": "dims=1,6", "m/config.pbtxt": `
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] reshape { shape: [ 1, -1 ] } } ]`})
	r := open(t, root, newLoader())
	if who, _, err := askShape(t, r, "m", "", 6); err != nil || !strings.Contains(who, "dims=1,6") {
		t.Errorf("x [6] reaches the model as [1 6]: %q %v", who, err)
	}
	if _, _, err := askShape(t, r, "m", "", 2, 3); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("x [2 3] is not the configured rank: %v", err)
	}
}
