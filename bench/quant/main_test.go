package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReport runs the program on small networks for a few milliseconds a
// cell and checks that every table and cell is there and every variant
// meets its bound.
func TestReport(t *testing.T) {
	orttest.Require(t)
	out := filepath.Join(t.TempDir(), "report.md")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-scale", "small", "-rounds", "2", "-d", "20ms", "-warmup", "5ms", "-o", out}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	text := stdout.String()
	if file, _ := os.ReadFile(out); string(file) != text {
		t.Error("the -o file differs from stdout")
	}
	for _, want := range []string{
		"### Accuracy against FP32", "| mlp | int8 | ", "| conv | int8-tensor | ", "| conv | fp16-in-fp32 | ",
		"### Speed: one caller", "| mlp | int8 | 64 | ", "| conv | fp16 | 1 | ", "| conv | int8-unfused | 64 | ",
		"### What ONNX Runtime runs", "ms.QGemm×3", "ms.QLinearConv×2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "**no**") {
		t.Errorf("a variant misses its bound:\n%s", text)
	}
	// 3 networks × 2 batch sizes × 4 timed variants besides fp32, two
	// ratios each.
	if n := strings.Count(text, "× – **"); n != 3*2*4*2 {
		t.Errorf("%d ratio cells, want 48 (24 rows × 2):\n%s", n, text)
	}
}

// TestVariants checks the full-size variants the README reports: each
// loads and answers within its stated bound of FP32, the models hold what
// QuantizeMLP, QuantizeConvNet and Precision document, and ONNX Runtime
// runs the INT8 ones in integer kernels (QGemm, QLinearConv) at its
// default optimisation level and in FP32 at level basic.
func TestVariants(t *testing.T) {
	orttest.Require(t)
	sizes := scales["full"]
	for _, name := range []string{"mlp", "conv", "fraud"} {
		t.Run(name, func(t *testing.T) {
			n, err := build(name, "full")
			if err != nil {
				t.Fatal(err)
			}
			s, err := serve(n)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			acc, err := s.accuracy(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range acc {
				if !a.met() {
					t.Errorf("%s: max error %.3g of the largest output, argmax agreement %.3f; bound %+v", a.variant, a.maxRel, a.agree, a.bound)
				}
				if a.variant != "fp32" && a.maxAbs == 0 {
					t.Errorf("%s answers exactly as FP32: not the variant it claims", a.variant)
				}
			}
			// layers with weights, their output channels, and what ONNX
			// Runtime should make of them
			layers, channels := len(sizes.mlp)-1, sum(sizes.mlp[1:])
			integer := map[string]int{"com.microsoft.QGemm": layers}
			switch name {
			case "conv":
				layers, channels = len(sizes.channels)+1, sum(sizes.channels)+sizes.classes
				integer = map[string]int{"com.microsoft.QGemm": 1, "com.microsoft.QLinearConv": len(sizes.channels), "com.microsoft.QLinearGlobalAveragePool": 1}
			case "fraud":
				layers, channels = 2, 16+1
				integer = map[string]int{"com.microsoft.QGemm": 2}
			}
			weights := 2 * layers // FP32 and FP16 models: a weight and a bias per layer
			for _, k := range s.kernels {
				src, ran := k.source, k.ran
				switch k.variant {
				case "fp32":
					if src.Initializers[onnxbuild.Float] != weights || len(src.Initializers) != 1 {
						t.Errorf("fp32 weights: %v", src.Initializers)
					}
				case "fp16", "fp16-in-fp32":
					if src.Initializers[onnxbuild.Float16] != weights || src.Initializers[onnxbuild.Float] != 0 {
						t.Errorf("%s weights: %v, want %d FLOAT16 and no FLOAT", k.variant, src.Initializers, weights)
					}
				case "int8", "int8-tensor", "int8-unfused":
					// FP32 only in scales: one per QuantizeLinear, and per
					// channel (or per tensor) for each weight and bias.
					perLayer := channels
					if k.variant == "int8-tensor" {
						perLayer = layers
					}
					scales := src.Ops["QuantizeLinear"] + 2*perLayer
					if src.Initializers[onnxbuild.Int8] != 2*layers || src.Initializers[onnxbuild.Int32] != 2*layers ||
						src.Bytes[onnxbuild.Float] != 4*scales {
						t.Errorf("%s weights: %v (%v bytes), want INT8 weights, INT32 biases and %d FP32 scales", k.variant, src.Initializers, src.Bytes, scales)
					}
					if k.variant == "int8-unfused" {
						if ran.Count("com.microsoft.QGemm", "com.microsoft.QLinearConv") != 0 || ran.Ops["DequantizeLinear"] == 0 {
							t.Errorf("int8 at level basic: %v, want the QDQ pairs kept", ran.Ops)
						}
						continue
					}
					for op, want := range integer {
						if ran.Ops[op] != want {
							t.Errorf("%s: ONNX Runtime runs %d %s, want %d (all: %v)", k.variant, ran.Ops[op], op, want, ran.Ops)
						}
					}
					if n := ran.Count("DequantizeLinear", "Gemm", "MatMul", "Conv", "com.microsoft.FusedGemm", "com.microsoft.nchwc.Conv"); n != 0 {
						t.Errorf("%s: ONNX Runtime still runs %d FP32 products or DequantizeLinear: %v", k.variant, n, ran.Ops)
					}
				}
			}
		})
	}
}

// TestINT8IsItsArithmetic: what ONNX Runtime answers for the INT8 models
// is what their Go evaluation computes in integers (to float rounding and
// the odd requantization tie), far closer than to FP32: the runtime runs
// the model QuantizeMLP and QuantizeConvNet describe, not just something
// near the FP32 one.
func TestINT8IsItsArithmetic(t *testing.T) {
	orttest.Require(t)
	mlp, _ := onnxbuild.RandomMLPSpec("m", []int{32, 64, 64, 8}, "", 3)
	qm, err := onnxbuild.QuantizeMLP(mlp, normal(256*32, 1), onnxbuild.PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	conv, _ := onnxbuild.RandomConvNetSpec("c", 3, 12, 12, []int{8, 16}, 5, 4)
	qc, err := onnxbuild.QuantizeConvNet(conv, normal(16*3*12*12, 1), onnxbuild.PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    interface {
			Eval([]float32) ([]float32, error)
		}
		model func() ([]byte, error)
		fp32  interface {
			Eval([]float32) ([]float32, error)
		}
		input string
		row   []int64
	}{
		{"mlp", qm, qm.Model, mlp, "input", []int64{32}},
		{"conv", qc, qc.Model, conv, "image", []int64{3, 12, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.model()
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnx.LoadBytes(tc.name, b)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rows := 40
			size := 1
			for _, d := range tc.row {
				size *= int(d)
			}
			x := normal(rows*size, 9)
			in, _ := serving.NewTensor(tc.input, append([]int64{int64(rows)}, tc.row...), x)
			resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := floats32(resp)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := tc.q.Eval(x)
			fp32, _ := tc.fp32.Eval(x)
			toEval, toFP32 := relError(got, want), relError(got, fp32)
			if toEval > 1e-3 || toEval > toFP32/10 {
				t.Errorf("ONNX Runtime vs the INT8 arithmetic: %.3g of the largest output; vs FP32: %.3g", toEval, toFP32)
			}
		})
	}
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

func relError(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i]-want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	return d / m
}

func TestParse(t *testing.T) {
	c, err := parse([]string{"-variants", "int8", "-batches", "1,8"})
	if err != nil || len(c.variants) != 2 || c.variants[0] != "fp32" || len(c.batches) != 2 {
		t.Errorf("parse: %+v, %v; want fp32 added first", c, err)
	}
	for _, args := range [][]string{{"-batches", "0"}, {"-rounds", "0"}, {"-d", "0s"}, {"-nets", ""}} {
		if _, err := parse(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := build("resnet", "full"); err == nil {
		t.Error("unknown network: no error")
	}
	if _, err := build("mlp", "huge"); err == nil {
		t.Error("unknown scale: no error")
	}
}
