package remote_test

import (
	"bufio"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// nodePeer starts bench/node-peer (onnxruntime-node behind node:http, a V2
// REST server sharing no code with servekit) on model, and returns its
// base URL. Without node or its npm packages the test is skipped, or fails
// where SERVEKIT_REQUIRE_NODE=1 (CI); the packages are installed as
// bench/http.sh installs them.
func nodePeer(t *testing.T, model string) string {
	t.Helper()
	missing := func(why string, args ...any) {
		t.Helper()
		if os.Getenv("SERVEKIT_REQUIRE_NODE") == "1" {
			t.Fatalf("Node peer required (SERVEKIT_REQUIRE_NODE=1): "+why, args...)
		}
		t.Skipf("Node peer not available: "+why, args...)
	}
	dir, err := filepath.Abs("../../bench/node-peer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("no node on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			missing("no npm on PATH")
		}
		cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ONNXRUNTIME_NODE_INSTALL=skip")
		if out, err := cmd.CombinedOutput(); err != nil {
			missing("npm install in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.Command("node", "server.js", model, "0")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The peer prints one line once it listens: "... on http://host:port/v2/...".
	line, read := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(read)
		s := bufio.NewScanner(out)
		s.Scan()
		line <- s.Text()
		for s.Scan() {
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-read // the pipe's end: the peer has exited; Wait may close it now
		cmd.Wait()
	})
	select {
	case l := <-line:
		i, j := strings.Index(l, "http://"), strings.Index(l, "/v2/")
		if i < 0 || j < i {
			t.Fatalf("node peer said %q", l)
		}
		return l[i:j]
	case <-ctx.Done():
		t.Fatal("node peer did not start")
	}
	return ""
}

// TestNodePeer: against onnxruntime-node serving the demo model over REST
// (JSON only: the peer has no binary tensors and no metadata route), the
// client conforms and answers bit for bit as the in-process model does.
func TestNodePeer(t *testing.T) {
	orttest.Require(t)
	path, err := filepath.Abs("../../testdata/models/fraud.onnx")
	if err != nil {
		t.Fatal(err)
	}
	local, err := onnx.Load(path, onnx.WithName("fraud"))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	base := nodePeer(t, path)
	md := local.Metadata()
	rows := func() *serving.Request {
		x, _ := serving.NewTensor(md.Inputs[0].Name, []int64{3, 8}, []float32{
			0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4,
			1e-7, 3.4e38, -3.4e38, 0.1, 0.2, 0.3, float32(math.Copysign(0, -1)), 1,
			-2.5, 2.5, 100, -100, 0.333333, 7, 8, 9})
		return &serving.Request{Inputs: []serving.Tensor{x}}
	}
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			p, err := remote.Dial(context.Background(), base, "fraud", remote.WithMetadata(md))
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		Request:       rows,
		Deterministic: true,
	})
	want, err := local.Predict(context.Background(), rows())
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]remote.Option{nil, {remote.WithBinaryThreshold(-1)}} {
		p := dial(t, base, "fraud", append(opts, remote.WithMetadata(md))...)
		got, err := p.Predict(context.Background(), rows())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bits(got.Outputs), bits(want.Outputs)) {
			t.Errorf("node peer answered\n %+v\nin process\n %+v", got.Outputs, want.Outputs)
		}
	}
}
