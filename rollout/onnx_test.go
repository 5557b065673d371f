package rollout_test

import (
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
)

// TestTwoONNXVersions routes between two real ONNX models, the same MLP
// shape with different weights, and checks every answer against the
// version the response names, computed in plain Go.
func TestTwoONNXVersions(t *testing.T) {
	orttest.Require(t)
	specs := map[string]onnxbuild.MLPSpec{}
	load := func(v string, seed int64) *onnx.Model {
		spec, err := onnxbuild.RandomMLPSpec("scorer", []int{4, 8, 3}, "softmax", seed)
		if err != nil {
			t.Fatal(err)
		}
		specs[v] = spec
		b, err := onnxbuild.MLP(spec)
		if err != nil {
			t.Fatal(err)
		}
		m, err := onnx.LoadBytes("scorer", b, onnx.WithVersion(v))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	r := newRouter(t, "scorer", quiet)
	m1, m2 := load("1", 1), load("2", 2)
	mustPut(t, r, "1", m1)
	mustPut(t, r, "2", m2)
	if err := r.SetWeights(map[string]float64{"1": 70, "2": 30}); err != nil {
		t.Fatal(err)
	}

	check := func(key, pin string) string {
		t.Helper()
		x := []float32{0.5, -1, float32(len(key)) / 10, 2}
		in, _ := serving.NewTensor("input", []int64{1, 4}, x)
		resp, err := r.Predict(context.Background(), &serving.Request{Model: "scorer", Key: key, Version: pin, Inputs: []serving.Tensor{in}})
		if err != nil {
			t.Fatalf("Predict(key %q): %v", key, err)
		}
		out, _ := resp.Output("output")
		got, _ := serving.Values[float32](out)
		want, _ := specs[resp.Version].Eval(x)
		other := specs[map[string]string{"1": "2", "2": "1"}[resp.Version]]
		wrong, _ := other.Eval(x)
		if !near(got, want) || near(got, wrong) {
			t.Fatalf("key %q: version %q answered %v; that version computes %v, the other %v", key, resp.Version, got, want, wrong)
		}
		return resp.Version
	}
	counts := map[string]int{}
	for i := range 300 {
		counts[check("user-"+strconv.Itoa(i), "")]++
	}
	if counts["1"] < 150 || counts["2"] < 50 {
		t.Errorf("split over 300 keys %v, want about 70/30", counts)
	}
	if v := check("anyone", "2"); v != "2" {
		t.Errorf("pinned to 2, answered by %s", v)
	}
	md := r.Metadata()
	if md.Name != "scorer" || md.Version != "1" || md.Inputs[0].Name != "input" {
		t.Errorf("metadata %+v", md)
	}

	// Blue-green on real sessions, then a hot reload of version 1.
	if err := r.Switch("2"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if v := check("user-"+strconv.Itoa(i), ""); v != "2" {
			t.Fatalf("after Switch answered by %s", v)
		}
	}
	if err := r.Rollback(); err != nil {
		t.Fatal(err)
	}
	m1b := load("1", 1)
	mustPut(t, r, "1", m1b)
	if m1.Ready() {
		t.Error("replaced session still open")
	}
	check("user-1", "1")

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if m1b.Ready() || m2.Ready() {
		t.Error("Close left a session open")
	}
}

func near(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}
