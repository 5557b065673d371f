package onnx_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// testModel is one model of the generated test set: the CPU check against
// the builder's own evaluation below, and the CUDA-against-CPU comparison
// of gpu_test.go.
type testModel struct {
	name  string
	build func() ([]byte, error)
	// request makes a request of rows rows (images for the conv nets).
	request func(rows int, rng *rand.Rand) *serving.Request
	// eval is the builder's reference for the first output, nil where the
	// model has none (identity, multi-IO: compared bit for bit instead).
	eval func(x []float32) ([]float32, error)
	tol  tolerance
}

// tolerance is how far a float may be from the reference: |got-want| <=
// abs + rel*|want|. The zero tolerance means bit for bit.
type tolerance struct{ abs, rel float64 }

// Tolerances. On the CPU, FP32 differs from the Go evaluation only in the
// order of additions (about 1e-7 here) and FP16 by a few FP16 steps of the
// rounding between layers (2e-3 at most here), so these bounds leave a 10×
// margin and still catch any wrong kernel, whose errors are of order 1.
var (
	tolFP32 = tolerance{abs: 1e-5, rel: 1e-5}
	tolFP16 = tolerance{abs: 2e-2, rel: 2e-2}
)

// tolCUDA is the bound between CUDA and the CPU for a model of the given
// CPU tolerance. CUDA multiplies FP32 matrices and convolutions in TF32 by
// default on Ampere and later (10-bit mantissas, FP32 sums; ONNX Runtime's
// use_tf32): rounding the weights and the input of the conv net alone
// already costs 0.4 of 2e-3 (simulated), so FP32 gets 1e-2. FP16 kernels
// may sum in FP16 where the CPU sums in FP32, so FP16 gets 3e-2. A wrong
// kernel is still off by order 1.
func tolCUDA(cpu tolerance) tolerance {
	switch cpu {
	case tolFP32:
		return tolerance{abs: 1e-2, rel: 1e-2}
	case tolFP16:
		return tolerance{abs: 3e-2, rel: 3e-2}
	}
	return cpu // bit for bit
}

// The networks are small enough for the builder's Go evaluation and large
// enough that every kernel of the CUDA provider (GEMM, cuDNN convolution,
// pooling, softmax, casts) does real work.
func testModels() []testModel {
	mlp, _ := onnxbuild.RandomMLPSpec("mlp", []int{64, 128, 128, 10}, "softmax", 11)
	conv, _ := onnxbuild.RandomConvNetSpec("conv", 3, 16, 16, []int{8, 16, 32}, 10, 12)
	fraud := onnxbuild.FraudSpec()
	var ms []testModel
	floats := func(name string, shape ...int64) func(int, *rand.Rand) *serving.Request {
		return func(rows int, rng *rand.Rand) *serving.Request {
			shape := append([]int64{int64(rows)}, shape...)
			n, _ := serving.NumElements(shape)
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			t, _ := serving.NewTensor(name, shape, x)
			return &serving.Request{Inputs: []serving.Tensor{t}}
		}
	}
	ms = append(ms, testModel{name: "fraud", build: onnxbuild.FraudMLP, request: floats("features", 8), eval: fraud.Eval, tol: tolFP32})
	for _, p := range []onnxbuild.Precision{{}, onnxbuild.FP16, onnxbuild.MixedFP16} {
		mlp, conv := mlp, conv
		mlp.Precision, conv.Precision = p, p
		tol := tolFP32
		if p.Elem == onnxbuild.Float16 {
			tol = tolFP16
		}
		mlpReq, convReq := floats("input", 64), floats("image", 3, 16, 16)
		if p == onnxbuild.FP16 {
			mlpReq, convReq = toFP16(mlpReq), toFP16(convReq)
		}
		ms = append(ms,
			testModel{name: "mlp/" + p.String(), build: func() ([]byte, error) { return onnxbuild.MLP(mlp) }, request: mlpReq, eval: mlp.Eval, tol: tol},
			testModel{name: "conv/" + p.String(), build: func() ([]byte, error) { return onnxbuild.ConvNet(conv) }, request: convReq, eval: conv.Eval, tol: tol})
	}
	ms = append(ms, testModel{name: "multi_io", build: onnxbuild.MultiIO, request: func(rows int, rng *rand.Rand) *serving.Request {
		a := floats("a", 4)(rows, rng).Inputs[0]
		bv := make([]int64, rows*2)
		for i := range bv {
			bv[i] = rng.Int64N(1000) - 500
		}
		b, _ := serving.NewTensor("b", []int64{int64(rows), 2}, bv)
		return &serving.Request{Inputs: []serving.Tensor{a, b}}
	}})
	for _, dt := range serving.DataTypes {
		ms = append(ms, testModel{
			name:  "identity/" + dt.String(),
			build: func() ([]byte, error) { return onnxbuild.Identity(elemOf[dt], -1, 3) },
			request: func(rows int, _ *rand.Rand) *serving.Request {
				return &serving.Request{Inputs: []serving.Tensor{sample(dt, []int64{int64(rows), 3})}}
			},
		})
	}
	return ms
}

// toFP16 turns the FP32 requests of f into FP16 ones.
func toFP16(f func(int, *rand.Rand) *serving.Request) func(int, *rand.Rand) *serving.Request {
	return func(rows int, rng *rand.Rand) *serving.Request {
		req := f(rows, rng)
		for i, t := range req.Inputs {
			req.Inputs[i] = fp16Tensor(t)
		}
		return req
	}
}

// fp16Tensor rounds an FP32 tensor to FP16.
func fp16Tensor(t serving.Tensor) serving.Tensor {
	x, _ := serving.Values[float32](t)
	h := make([]uint16, len(x))
	for j, v := range x {
		h[j] = serving.Float32ToFP16(v)
	}
	out, err := serving.NewFP16(t.Name, t.Shape, h)
	if err != nil {
		panic(err)
	}
	return out
}

// floatsOf reads a float tensor of any float type as float64s.
func floatsOf(t serving.Tensor) ([]float64, bool) {
	switch t.DataType {
	case serving.FP16, serving.BF16, serving.FP32, serving.FP64:
	default:
		return nil, false
	}
	out := make([]float64, t.Len())
	for i := range out {
		out[i], _ = t.Float64At(i)
	}
	return out, true
}

// closeTo compares got with want: floats within tol (NaN equal to NaN,
// infinities exact), everything else bit for bit.
func closeTo(got, want serving.Tensor, tol tolerance) error {
	g, okG := floatsOf(got)
	w, okW := floatsOf(want)
	if tol == (tolerance{}) || !okG || !okW {
		return sameTensor(got, want)
	}
	if got.DataType != want.DataType || !equal(got.Shape, want.Shape) {
		return fmt.Errorf("got %v%v, want %v%v", got.DataType, got.Shape, want.DataType, want.Shape)
	}
	for i := range w {
		switch {
		case math.IsNaN(w[i]) && math.IsNaN(g[i]):
		case math.IsInf(w[i], 0) && g[i] == w[i]:
		case math.Abs(g[i]-w[i]) <= tol.abs+tol.rel*math.Abs(w[i]):
		default:
			return fmt.Errorf("%s[%d] = %v, want %v (±%v+%v·|want|)", got.Name, i, g[i], w[i], tol.abs, tol.rel)
		}
	}
	return nil
}

// TestBuiltModelsMatchEval: on the CPU, every generated network answers
// what the builder's Go evaluation says, in FP32, FP16 and FP16 behind
// FP32 edges (Cast). This is the ground truth the CUDA comparison leans
// on: CUDA is compared with the CPU, and the CPU with this.
func TestBuiltModelsMatchEval(t *testing.T) {
	requireORT(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tm := range testModels() {
		if tm.eval == nil {
			continue
		}
		t.Run(tm.name, func(t *testing.T) {
			b, err := tm.build()
			m := loadBytes(t, tm.name, b, err)
			for _, rows := range []int{1, 5} {
				req := tm.request(rows, rng)
				resp, err := m.Predict(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				x, _ := floatsOf(req.Inputs[0])
				x32 := make([]float32, len(x))
				for i, v := range x {
					x32[i] = float32(v)
				}
				ref, err := tm.eval(x32)
				if err != nil {
					t.Fatal(err)
				}
				want, err := serving.NewTensor(resp.Outputs[0].Name, resp.Outputs[0].Shape, ref)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Outputs[0].DataType == serving.FP16 {
					want = fp16Tensor(want)
				}
				if err := closeTo(resp.Outputs[0], want, tm.tol); err != nil {
					t.Errorf("%d rows: %v", rows, err)
				}
			}
		})
	}
}
