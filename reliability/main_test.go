package reliability_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/loadtest"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
)

var (
	overloadFull = flag.Bool("overload.full", false, "run the full overload test (make overload) and check the p99 ratio")
	soakFor      = flag.Duration("soak", 0, "run the soak test this long (make soak: 10m); 0 runs the short CI version")
	outDir       = flag.String("out", "", "folder for CSV curves and summaries (default: the test's temp dir)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The ORT binding's finaliser goroutine lives as long as the process.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

const servekitPkg = "github.com/servekit/servekit/cmd/servekit"

// server builds servekit and starts servekit serve with args.
func server(t *testing.T, args ...string) *loadtest.Server {
	t.Helper()
	lib := orttest.Library(t)
	bin := loadtest.Build(t, servekitPkg)
	return loadtest.Start(t, bin, append([]string{"--ort-lib", lib, "--debug-addr", "127.0.0.1:0", "--admin-token", "reliability"}, args...)...)
}

// fraudModel is the committed demo model.
func fraudModel(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../testdata/models/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const fraudBody = `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`

// heavyWidth is the input width of heavyModel.
const heavyWidth = 64

// heavyModel writes an MLP whose run costs a few milliseconds of one core
// (64→4096→2048→1, 8.6M multiply-adds, 34 MB), so that a run dominates the
// HTTP handling of its request (tens of microseconds), as in an overloaded
// model server. Generated, not committed.
func heavyModel(t testing.TB) string {
	t.Helper()
	b, err := onnxbuild.RandomMLP("heavy", []int{heavyWidth, 4096, 2048, 1}, "sigmoid", 7)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "heavy.onnx")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// heavyBody is a V2 request for heavyModel whose values vary with i, so
// that a cache (when on) misses.
func heavyBody(i int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"inputs":[{"name":"input","shape":[1,%d],"datatype":"FP32","data":[`, heavyWidth)
	for j := range heavyWidth {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64((i*31+int64(j))%97)/97-0.5, 'f', 4, 64))
	}
	b.WriteString("]}]}")
	return []byte(b.String())
}

// serverCPUs is how many CPUs the server may use: those of
// SERVEKIT_SERVER_CPUS ("1", "0-1", "2,3"), else all.
func serverCPUs() int {
	spec := os.Getenv("SERVEKIT_SERVER_CPUS")
	if spec == "" {
		return runtime.NumCPU()
	}
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		n += b - a + 1
	}
	return max(n, 1)
}

// output is where a test writes its curves: -out, else its temp dir.
func output(t *testing.T, name string) string {
	t.Helper()
	dir := *outDir
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
