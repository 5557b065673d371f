package onnx_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// wantErr checks an error's code and that its message names the culprit.
func wantErr(t *testing.T, err error, code serving.Code, says ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", code)
	}
	if got := serving.CodeOf(err); got != code {
		t.Errorf("code %v (%v), want %v", got, err, code)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestBadModels(t *testing.T) {
	requireORT(t)
	good, err := os.ReadFile(fraudPath())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("this is not a protobuf \x00\xff\xfe"), 0o644)
	truncated := filepath.Join(dir, "truncated.onnx")
	os.WriteFile(truncated, good[:len(good)/2], 0o644)

	t.Run("missing file", func(t *testing.T) {
		_, err := onnx.Load(filepath.Join(dir, "nope.onnx"))
		wantErr(t, err, serving.NotFound, "nope.onnx")
	})
	t.Run("directory", func(t *testing.T) {
		_, err := onnx.Load(dir)
		wantErr(t, err, serving.InvalidArgument, "directory")
	})
	t.Run("garbage file", func(t *testing.T) {
		_, err := onnx.Load(garbage)
		wantErr(t, err, serving.InvalidArgument, `model "garbage"`, "cannot load")
	})
	t.Run("truncated file", func(t *testing.T) {
		_, err := onnx.Load(truncated)
		wantErr(t, err, serving.InvalidArgument, "truncated", "cannot load")
	})
	t.Run("empty bytes", func(t *testing.T) {
		_, err := onnx.LoadBytes("empty", nil)
		wantErr(t, err, serving.InvalidArgument, `"empty"`, "no bytes")
	})
	t.Run("garbage bytes", func(t *testing.T) {
		_, err := onnx.LoadBytes("junk", []byte("\x08\x07junk junk junk"))
		wantErr(t, err, serving.InvalidArgument, `"junk"`, "cannot load")
	})
	t.Run("truncated bytes", func(t *testing.T) {
		_, err := onnx.LoadBytes("half", good[:len(good)-7])
		wantErr(t, err, serving.InvalidArgument, `"half"`)
	})
	// Non-tensor and exotic types come from ONNX's own test models.
	for _, c := range []struct{ model, says string }{
		{"test_sequence_insert_at_back", "sequence"},
		{"test_optional_get_element_sequence", "optional"},
		{"test_cast_FLOAT_to_FLOAT8E4M3FN", "FLOAT8E4M3FN"},
	} {
		t.Run(c.model, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(nodeDir(t), c.model, "model.onnx"))
			if err != nil {
				t.Skipf("ONNX test data: %v", err)
			}
			_, err = onnx.LoadBytes(c.model, b)
			wantErr(t, err, serving.Unimplemented, c.model, c.says)
		})
	}
}

func TestBadRequests(t *testing.T) {
	m := loadFraud(t)
	ctx := context.Background()
	x8 := make([]float32, 8)
	features := func(shape []int64, data any) serving.Tensor {
		var tt serving.Tensor
		var err error
		switch d := data.(type) {
		case []float32:
			tt, err = serving.NewTensor("features", shape, d)
		case []float64:
			tt, err = serving.NewTensor("features", shape, d)
		}
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	cases := []struct {
		name string
		req  *serving.Request
		code serving.Code
		says []string
	}{
		{"wrong dtype", &serving.Request{Inputs: []serving.Tensor{features([]int64{1, 8}, make([]float64, 8))}},
			serving.InvalidArgument, []string{"features", "FP64", "FP32"}},
		{"wrong width", &serving.Request{Inputs: []serving.Tensor{features([]int64{2, 4}, x8)}},
			serving.InvalidArgument, []string{"features", "[2,4]"}},
		{"wrong rank", &serving.Request{Inputs: []serving.Tensor{features([]int64{8}, x8)}},
			serving.InvalidArgument, []string{"features", "rank"}},
		{"unknown input", &serving.Request{Inputs: []serving.Tensor{func() serving.Tensor {
			tt := features([]int64{1, 8}, x8)
			tt.Name = "feature"
			return tt
		}()}}, serving.InvalidArgument, []string{`"feature"`}},
		{"missing input", &serving.Request{}, serving.InvalidArgument, []string{"missing", "features"}},
		{"duplicate input", &serving.Request{Inputs: []serving.Tensor{features([]int64{1, 8}, x8), features([]int64{1, 8}, x8)}},
			serving.InvalidArgument, []string{"features", "twice"}},
		{"absurd dims", &serving.Request{Inputs: []serving.Tensor{{Name: "features", DataType: serving.FP32, Shape: []int64{1 << 40, 1 << 40}}}},
			serving.InvalidArgument, []string{"features"}},
		{"data shorter than shape", &serving.Request{Inputs: []serving.Tensor{{Name: "features", DataType: serving.FP32, Shape: []int64{1 << 20, 8}}}},
			serving.InvalidArgument, []string{"features"}},
		{"unknown output", &serving.Request{Inputs: []serving.Tensor{features([]int64{1, 8}, x8)}, Outputs: []string{"prob"}},
			serving.NotFound, []string{`"prob"`, "score"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Predict(ctx, c.req)
			wantErr(t, err, c.code, c.says...)
		})
	}
	// The model still answers after all that.
	if _, err := m.Predict(ctx, fraudRows(2)); err != nil {
		t.Fatalf("Predict after bad requests: %v", err)
	}
}

func TestNULInString(t *testing.T) {
	b, err := onnxbuild.Identity(onnxbuild.String, -1)
	m := loadBytes(t, "strings", b, err)
	x, _ := serving.NewStrings("x", []int64{2}, []string{"ok", "nul\x00inside"})
	_, err = m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{x}})
	wantErr(t, err, serving.InvalidArgument, `"x"`, "element 1", "NUL")
}

// TestZeroRows: a batch of zero rows runs and answers zero rows.
func TestZeroRows(t *testing.T) {
	m := loadFraud(t)
	x, _ := serving.NewTensor("features", []int64{0, 8}, []float32{})
	resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{x}})
	if err != nil {
		t.Fatalf("Predict of 0 rows: %v", err)
	}
	if s, _ := resp.Output("score"); !equal(s.Shape, []int64{0, 1}) || s.Len() != 0 {
		t.Errorf("score %v%v, want [0 1] and no values", s.Shape, s.Data())
	}
}

func TestNaNAndInfPassThrough(t *testing.T) {
	m := loadFraud(t)
	x := make([]float32, 3*8)
	x[0] = float32(math.NaN())
	x[8] = float32(math.Inf(1))
	x[16] = float32(math.Inf(-1))
	in, _ := serving.NewTensor("features", []int64{3, 8}, x)
	resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := resp.Output("score")
	v, _ := serving.Values[float32](s)
	if !math.IsNaN(float64(v[0])) {
		t.Errorf("score of a NaN feature = %v, want NaN", v[0])
	}
	// amount pushes the score up: +Inf saturates the sigmoid, -Inf zeroes it.
	if math.IsNaN(float64(v[1])) || math.IsNaN(float64(v[2])) {
		t.Errorf("scores of ±Inf features = %v, want numbers", v[1:])
	}
}

func TestClosed(t *testing.T) {
	m := loadFraud(t)
	if !m.Ready() {
		t.Fatal("not ready after load")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("ready after Close")
	}
	_, err := m.Predict(context.Background(), fraudRows(1))
	if !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Predict after Close: %v", err)
	}
}

// TestCloseWhilePredicting: every Predict racing Close either answers or
// gets ErrClosed; none sees a destroyed session (run with -race).
func TestCloseWhilePredicting(t *testing.T) {
	m := loadFraud(t)
	errs := make(chan error, 64)
	start := make(chan struct{})
	for range 4 {
		go func() {
			<-start
			for range 16 {
				_, err := m.Predict(context.Background(), fraudRows(4))
				errs <- err
			}
		}()
	}
	close(start)
	for i := range 64 {
		if i == 20 {
			m.Close()
		}
		if err := <-errs; err != nil && !errors.Is(err, serving.ErrClosed) {
			t.Errorf("Predict: %v", err)
		}
	}
}

// TestMissingLibrary runs the test binary again with ONNXRUNTIME_LIB
// pointing at a missing file and at a file that is not a library: a
// process can load ONNX Runtime only once.
func TestMissingLibrary(t *testing.T) {
	if os.Getenv("ONNX_HELPER") == "1" {
		_, err := onnx.Load(fraudPath())
		os.Stdout.WriteString("ERR " + serving.CodeOf(err).String() + " " + boolStr(errors.Is(err, onnx.ErrRuntimeMissing)) + " " + errString(err) + "\n")
		os.Exit(0)
	}
	notLib := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(notLib, []byte("not an ELF file"), 0o644)
	for _, lib := range []string{"/nonexistent/libonnxruntime.so.1", notLib} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingLibrary$")
		cmd.Env = append(os.Environ(), "ONNX_HELPER=1", "ONNXRUNTIME_LIB="+lib)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"ERR unavailable true", lib, "scripts/install-onnxruntime.sh", "ONNXRUNTIME_LIB="} {
			if !strings.Contains(s, want) {
				t.Errorf("with ONNXRUNTIME_LIB=%s the error\n%s\ndoes not say %q", lib, s, want)
			}
		}
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
