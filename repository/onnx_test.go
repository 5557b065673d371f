package repository_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

// onnxLoad is the LoadFunc a server writes: onnx.Load with the names and
// the config's parameters.
func onnxLoad(_ context.Context, v repository.Version) (serving.Predictor, error) {
	var p struct {
		Threads int `json:"intra_op_threads"`
	}
	if err := v.DecodeParameters(&p); err != nil {
		return nil, err
	}
	opts := []onnx.Option{onnx.WithName(v.Model), onnx.WithVersion(v.Version)}
	if p.Threads > 0 {
		opts = append(opts, onnx.WithIntraOpThreads(p.Threads))
	}
	return onnx.Load(v.Path, opts...)
}

func writeBytes(t *testing.T, root, path string, b []byte) {
	t.Helper()
	write(t, root, map[string]string{path: string(b)})
}

// The target on ONNX Runtime: two versions of a small MLP, 64
// callers, 100 hot reloads of version 2 from disk (every seventh to a
// truncated file). Zero failed requests, every response's Version is the
// model whose numbers it carries, and no session leaks (onnx.LiveSessions).
func TestONNXHotReloadUnderLoad(t *testing.T) {
	orttest.Require(t)
	sessions := onnx.LiveSessions()
	mlp := func(seed int64) []byte {
		b, err := onnxbuild.RandomMLP("mlp", []int{8, 16, 3}, "softmax", seed)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Version 1 is model A; version 2 alternates between B and C.
	models := map[string][]byte{"A": mlp(1), "B": mlp(2), "C": mlp(3)}
	x := make([]float32, 8)
	for i := range x {
		x[i] = float32(i)/4 - 1
	}
	input, _ := serving.NewTensor("input", []int64{1, 8}, x)
	want := map[string][]float32{} // model → its output for input
	for name, b := range models {
		m, err := onnx.LoadBytes(name, b)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{input}})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := resp.Output("output")
		want[name], _ = serving.Values[float32](out)
		m.Close()
	}
	which := func(out []float32) string {
		for name, w := range want {
			if reflect.DeepEqual(out, w) {
				return name
			}
		}
		return "?"
	}

	root := t.TempDir()
	writeBytes(t, root, "mlp/config.json", []byte(`{"version_policy": {"all": {}}, "parameters": {"intra_op_threads": 1},
		"model_warmup": [{"inputs": {"input": {"data_type": "FP32", "dims": [4, 8], "random_data": true}}}]}`))
	writeBytes(t, root, "mlp/1/model.onnx", models["A"])
	writeBytes(t, root, "mlp/2/model.onnx", models["B"])
	r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if got := states(r, "mlp"); got != "1:ready 2:ready" {
		t.Fatalf("versions %s: %+v", got, r.Status())
	}
	rt, _ := r.Router("mlp")

	const callers, reloads = 64, 100
	stop := hammer(callers, func(c int) func() error {
		pin := []string{"", "", "1", "2"}[c%4]
		return func() error {
			resp, err := rt.Predict(context.Background(), &serving.Request{Model: "mlp", Version: pin, Inputs: []serving.Tensor{input}})
			if err != nil {
				return err
			}
			out, _ := resp.Output("output")
			v, _ := serving.Values[float32](out)
			got := which(v)
			switch {
			case pin != "" && resp.Version != pin:
				return fmt.Errorf("pinned to %s, response says %s", pin, resp.Version)
			case pin == "" && resp.Version != "2":
				return fmt.Errorf("routed request answered as version %s, want 2", resp.Version)
			case resp.Version == "1" && got != "A", resp.Version == "2" && got != "B" && got != "C":
				return fmt.Errorf("response says version %s, numbers are model %s's", resp.Version, got)
			}
			return nil
		}
	})
	for i := 1; i <= reloads; i++ {
		b := models[[]string{"B", "C"}[i%2]]
		if i%7 == 0 {
			b = b[:len(b)/2] // truncated: ONNX Runtime cannot parse it
		}
		writeBytes(t, root, "mlp/2/model.onnx", b)
		if err := r.Sync(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if v := versionStatus(r, "mlp", "2"); v.State != repository.StateReady || (i%7 == 0) != (v.Reason != "") {
			t.Fatalf("reload %d: status %+v", i, v)
		}
	}
	answers, failures, first := stop()
	if failures != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failures, answers+failures, first)
	}
	// The last request to leave a replaced version closes it in a
	// goroutine of the router's, so the count settles just after.
	poll.Until(t, "2 sessions live after the reloads", func() bool { return onnx.LiveSessions()-sessions == 2 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := onnx.LiveSessions(); got != sessions {
		t.Errorf("%d sessions leaked", got-sessions)
	}
	t.Logf("%d answers across %d reloads", answers, reloads)
}
