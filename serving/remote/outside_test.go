package remote_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestOutsideModule: a program of another module uses the client as a
// Predictor, as a user's service would (testdata/outside). The test
// writes that module in a temporary directory, requiring servekit through
// a replace of this checkout, and builds it with the module cache only
// (GOFLAGS=-mod=mod, GOPROXY=off: nothing is downloaded, the checkout's
// go.sum vouches for every dependency). Against a servekit server it
// prints every output bit for bit as the in-process model answers it, over
// REST and gRPC, and its own test runs servingtest.Conformance on the
// client, green.
func TestOutsideModule(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go on PATH: %v", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf("module example.com/outside\n\ngo 1.26.0\n\nrequire github.com/servekit/servekit v0.0.0\n\nreplace github.com/servekit/servekit => %s\n", root)
	files := map[string][]byte{"go.mod": []byte(gomod)}
	for _, name := range []string{"main.go", "conformance_test.go"} {
		if files[name], err = os.ReadFile(filepath.Join("testdata", "outside", name)); err != nil {
			t.Fatal(err)
		}
	}
	if files["go.sum"], err = os.ReadFile(filepath.Join(root, "go.sum")); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	local := echo()
	h := httpapi.New()
	for name, p := range map[string]serving.Predictor{"echo": local, "linear": servingtest.Linear(4)} {
		if err := h.Handle(name, p); err != nil {
			t.Fatal(err)
		}
	}
	srv := serveHandler(t, grpcapi.New(h, grpcapi.WithFallback(h)))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gocmd := func(extraEnv []string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off"}, extraEnv...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	bin := filepath.Join(dir, "outside")
	gocmd(nil, "build", "-o", bin, ".")

	// What the in-process model answers to the program's request.
	var want strings.Builder
	req := outsideRequest(t)
	resp, err := local.Predict(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range resp.Outputs {
		fmt.Fprintf(&want, "%s %v %v %s\n", o.Name, o.DataType, o.Shape, hex.EncodeToString(o.AppendRaw(nil)))
	}
	for _, tg := range []string{srv.rest(), srv.grpc()} {
		out, err := exec.CommandContext(ctx, bin, tg, "echo").Output()
		if err != nil {
			t.Fatalf("outside %s: %v", tg, err)
		}
		if string(out) != want.String() {
			t.Errorf("outside %s printed\n%s\nthe in-process model answers\n%s", tg, out, want.String())
		}
	}
	out := gocmd([]string{"SERVEKIT_TARGETS=" + srv.rest() + " " + srv.grpc()}, "test", "-count=1", "-v", ".")
	if !strings.Contains(out, "--- PASS: TestConformance/http") || !strings.Contains(out, "--- PASS: TestConformance/grpc") {
		t.Errorf("the outside module's conformance test:\n%s", out)
	}
}

// outsideRequest is testdata/outside's request, built from the same
// values.
func outsideRequest(t *testing.T) *serving.Request {
	t.Helper()
	must := func(x serving.Tensor, err error) serving.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	return &serving.Request{ID: "outside", Inputs: []serving.Tensor{
		must(serving.NewTensor("f32", []int64{2, 3}, []float32{
			math.Float32frombits(0x7fc00123), float32(math.Copysign(0, -1)), math.MaxFloat32,
			math.SmallestNonzeroFloat32, 0.1, -1.0 / 3})),
		must(serving.NewTensor("i64", []int64{3}, []int64{math.MinInt64, 1<<53 + 1, math.MaxInt64})),
		must(serving.NewFP16("f16", []int64{3}, []uint16{0x0001, 0x7bff, 0x7e01})),
		must(serving.NewStrings("bytes", []int64{2}, []string{"\xff\xfe", "héllo"})),
	}}
}
