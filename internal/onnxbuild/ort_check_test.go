//go:build ortcheck

// A manual check that ONNX Runtime loads and runs what this package
// builds. It needs the shared library, so normal CI leaves it out:
//
//	go test -tags ortcheck -run ORT -v ./internal/onnxbuild
//
// ONNXRUNTIME_LIB overrides the library path. backend/onnx holds the
// real runtime tests; this only guards the builder.

package onnxbuild_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/internal/onnxbuild"
)

var ortInit = sync.OnceValue(func() error {
	path := os.Getenv("ONNXRUNTIME_LIB")
	if path == "" {
		path = "../../third_party/onnxruntime/libonnxruntime.so.1"
	}
	ort.SetSharedLibraryPath(path)
	return ort.InitializeEnvironment()
})

func ortSession(t *testing.T, model []byte, err error, ins, outs []string) *ort.DynamicAdvancedSession {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := ortInit(); err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, ins, outs, nil)
	if err != nil {
		t.Fatalf("ONNX Runtime rejected the model: %v", err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

func ck(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func destroy(t *testing.T, vs ...ort.Value) {
	t.Cleanup(func() {
		for _, v := range vs {
			if v != nil {
				v.Destroy()
			}
		}
	})
}

func TestORTIdentity(t *testing.T) {
	shape := ort.NewShape(2, 3)
	for _, elem := range onnxbuild.ElemTypes {
		t.Run(elem.String(), func(t *testing.T) {
			model, err := onnxbuild.Identity(elem, -1, 3)
			s := ortSession(t, model, err, []string{"x"}, []string{"y"})
			if elem == onnxbuild.String {
				// No NUL bytes: onnxruntime_go fills string inputs through
				// ORT's FillStringTensor, which takes C strings, so "\x00ab"
				// arrives as "". Outputs carry lengths and are exact.
				want := []string{"a", "", "ünïcødé", "tab\there", "fraud", "x y"}
				in, err := ort.NewStringTensor(shape)
				ck(t, err)
				destroy(t, in)
				if err := in.SetContents(want); err != nil {
					t.Fatal(err)
				}
				outs := []ort.Value{nil} // ORT allocates string outputs itself
				if err := s.Run([]ort.Value{in}, outs); err != nil {
					t.Fatal(err)
				}
				destroy(t, outs[0])
				got, err := outs[0].(*ort.StringTensor).GetContents()
				ck(t, err)
				if !slices.Equal(got, want) {
					t.Errorf("got %q, want %q", got, want)
				}
				return
			}
			raw, err := binary.Append(nil, binary.LittleEndian, samples[elem])
			ck(t, err)
			dt := ort.TensorElementDataType(elem) // ORT numbers types as onnx.proto does
			in, err := ort.NewCustomDataTensor(shape, raw, dt)
			ck(t, err)
			// Preallocated: onnxruntime_go mis-sizes library-allocated FP16.
			out, err := ort.NewCustomDataTensor(shape, make([]byte, len(raw)), dt)
			ck(t, err)
			destroy(t, in, out)
			if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.GetData(), raw) {
				t.Errorf("got % x, want % x", out.GetData(), raw)
			}
		})
	}
}

// checkMLP runs spec's model on rows random rows and compares ORT with
// MLPSpec.Eval.
func checkMLP(t *testing.T, spec onnxbuild.MLPSpec, model []byte, err error, rows int) {
	t.Helper()
	input, output := spec.Input, spec.Output
	if input == "" {
		input = "input"
	}
	if output == "" {
		output = "output"
	}
	s := ortSession(t, model, err, []string{input}, []string{output})
	in, out := spec.Layers[0].In, spec.Layers[len(spec.Layers)-1].Out
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, rows*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	want, err := spec.Eval(x)
	ck(t, err)
	xt, err := ort.NewTensor(ort.NewShape(int64(rows), int64(in)), x)
	ck(t, err)
	yt, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(rows), int64(out)))
	ck(t, err)
	destroy(t, xt, yt)
	if err := s.Run([]ort.Value{xt}, []ort.Value{yt}); err != nil {
		t.Fatal(err)
	}
	for i, got := range yt.GetData() {
		if d := math.Abs(float64(got - want[i])); d > 1e-4*max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("output %d: ORT %v, Eval %v", i, got, want[i])
		}
	}
}

func TestORTFraud(t *testing.T) {
	model, err := onnxbuild.FraudMLP()
	checkMLP(t, onnxbuild.FraudSpec(), model, err, 5)

	s := ortSession(t, model, err, []string{"features"}, []string{"score"})
	meta, err := s.GetModelMetadata()
	ck(t, err)
	defer meta.Destroy()
	features, ok, err := meta.LookupCustomMetadataMap("features")
	if err != nil || !ok || features != strings.Join(onnxbuild.FraudFeatures, ",") {
		t.Errorf("features metadata = %q, %v, %v", features, ok, err)
	}
	if p, err := meta.GetProducerName(); err != nil || p != onnxbuild.Producer {
		t.Errorf("producer %q", p)
	}
}

func TestORTRandomMLP(t *testing.T) {
	spec, err := onnxbuild.RandomMLPSpec("bench", []int{256, 1024, 1024, 10}, "softmax", 7)
	ck(t, err)
	model, err := onnxbuild.MLP(spec)
	t.Logf("256→1024→1024→10 model: %d bytes", len(model))
	checkMLP(t, spec, model, err, 4)

	spec, err = onnxbuild.RandomMLPSpec("tanh", []int{5, 7, 3}, "", 3)
	ck(t, err)
	spec.Activation = "tanh"
	model, err = onnxbuild.MLP(spec)
	checkMLP(t, spec, model, err, 3)
}

func TestORTMultiIO(t *testing.T) {
	model, err := onnxbuild.MultiIO()
	s := ortSession(t, model, err, []string{"a", "b"}, []string{"sum", "b2", "label"})
	a, err := ort.NewTensor(ort.NewShape(2, 4), []float32{1, 2, 3, 4, -1, -2, 0.5, 0})
	ck(t, err)
	b, err := ort.NewTensor(ort.NewShape(2, 2), []int64{7, -3, 0, math.MaxInt64 / 4})
	ck(t, err)
	outs := []ort.Value{nil, nil, nil}
	if err := s.Run([]ort.Value{a, b}, outs); err != nil {
		t.Fatal(err)
	}
	destroy(t, a, b, outs[0], outs[1], outs[2])
	if got := outs[0].(*ort.Tensor[float32]).GetData(); !slices.Equal(got, []float32{2, 4, 6, 8, -2, -4, 1, 0}) {
		t.Errorf("sum = %v", got)
	}
	if got := outs[1].(*ort.Tensor[int64]).GetData(); !slices.Equal(got, []int64{14, -6, 0, math.MaxInt64 / 4 * 2}) {
		t.Errorf("b2 = %v", got)
	}
	want := []string{"7", "-3", "0", strconv.FormatInt(math.MaxInt64/4, 10)}
	if got, err := outs[2].(*ort.StringTensor).GetContents(); err != nil || !slices.Equal(got, want) {
		t.Errorf("label = %q, want %q", got, want)
	}
}

func TestORTAttributes(t *testing.T) {
	// Constant(value) + LeakyRelu(alpha) + Transpose(perm): one attribute
	// of each encoding (tensor, float, ints) that ORT must read back.
	g := onnxbuild.NewGraph("attrs")
	g.Input("x", onnxbuild.Float, 2, 3)
	g.Node("Constant", nil, []string{"c"}, onnxbuild.AttrTensor("value",
		&onnxbuild.TensorData{Elem: onnxbuild.Float, Dims: []int64{3}, Data: []float32{1, 2, 3}}))
	g.Node("Add", []string{"x", "c"}, []string{"s"})
	g.Node("LeakyRelu", []string{"s"}, []string{"r"}, onnxbuild.AttrFloat("alpha", 0.5))
	g.Node("Transpose", []string{"r"}, []string{"y"}, onnxbuild.AttrInts("perm", 1, 0))
	g.Output("y", onnxbuild.Float, 3, 2)
	model, err := g.Model(onnxbuild.DefaultOpset)
	s := ortSession(t, model, err, []string{"x"}, []string{"y"})
	x, err := ort.NewTensor(ort.NewShape(2, 3), []float32{-4, -4, -4, 0, 0, 0})
	ck(t, err)
	y, err := ort.NewEmptyTensor[float32](ort.NewShape(3, 2))
	ck(t, err)
	destroy(t, x, y)
	ck(t, s.Run([]ort.Value{x}, []ort.Value{y}))
	if got, want := y.GetData(), []float32{-1.5, 1, -1, 2, -0.5, 3}; !slices.Equal(got, want) {
		t.Errorf("y = %v, want %v", got, want)
	}
}
