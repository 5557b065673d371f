package rollout_test

import (
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// twoVersions returns a router holding versions 1 and 2, added in order.
func twoVersions(t testing.TB, model string, order ...string) *rollout.Router {
	t.Helper()
	r := newRouter(t, model, quiet)
	t.Cleanup(func() { r.Close() })
	if len(order) == 0 {
		order = []string{"1", "2"}
	}
	for _, v := range order {
		mustPut(t, r, v, servingtest.Static())
	}
	return r
}

func setCanary(t testing.TB, r *rollout.Router, w float64) {
	t.Helper()
	if err := r.SetWeights(map[string]float64{"1": math.Round((100-w)*10) / 10, "2": w}); err != nil {
		t.Fatalf("SetWeights(canary %v): %v", w, err)
	}
}

// route returns the version r routes key to.
func route(t testing.TB, r *rollout.Router, key string) string {
	v, err := r.RouteKey(key)
	if err != nil {
		t.Fatalf("RouteKey(%q): %v", key, err)
	}
	return v
}

// answer asks r for key and returns the version that answered.
func answer(t testing.TB, r *rollout.Router, key string) string {
	t.Helper()
	resp, err := r.Predict(context.Background(), &serving.Request{Model: "m", Key: key})
	if err != nil {
		t.Fatalf("Predict(%q): %v", key, err)
	}
	return resp.Version
}

func TestRouteKeyMatchesPredict(t *testing.T) {
	r := twoVersions(t, "fraud")
	setCanary(t, r, 37.5)
	for i := range 2000 {
		key := "user-" + strconv.Itoa(i)
		if a, b := route(t, r, key), answer(t, r, key); a != b {
			t.Fatalf("key %q: routed to %q, answered by %q", key, a, b)
		}
	}
	for range 1000 {
		v, err := r.RouteKey("")
		if err != nil || v != "1" && v != "2" {
			t.Fatalf("RouteKey without a key: %q, %v", v, err)
		}
	}
}

const numKeys = 100_000

func TestCanaryShareOfDistinctKeys(t *testing.T) {
	r := twoVersions(t, "fraud")
	for _, w := range []float64{1, 5, 25, 50, 90} {
		setCanary(t, r, w)
		canary := 0
		for i := range numKeys {
			if route(t, r, "user-"+strconv.Itoa(i)) == "2" {
				canary++
			}
		}
		share := 100 * float64(canary) / numKeys
		if math.Abs(share-w) > 1 {
			t.Errorf("weight %v%%: %.2f%% of %d keys on the canary, want within 1 point", w, share, numKeys)
		}
	}
}

func TestKeysNeverFlipWhileCanaryGrows(t *testing.T) {
	r := twoVersions(t, "fraud")
	const keys = 1_000
	onCanary := make([]bool, keys)
	prev := 0
	for u := 1; u <= 1000; u++ { // 0.1 % … 100 % in steps of 0.1
		setCanary(t, r, float64(u)/10)
		n := 0
		for i := range keys {
			v := route(t, r, "session-"+strconv.Itoa(i))
			if onCanary[i] && v != "2" {
				t.Fatalf("key %d left the canary when its weight grew to %.1f%%", i, float64(u)/10)
			}
			if v == "2" {
				onCanary[i] = true
				n++
			}
		}
		if n < prev {
			t.Fatalf("canary keys shrank from %d to %d at %.1f%%", prev, n, float64(u)/10)
		}
		prev = n
	}
	if prev != keys {
		t.Errorf("at 100%% the canary has %d of %d keys", prev, keys)
	}
}

func TestReplicasAgreeOnEveryKey(t *testing.T) {
	// Two routers built independently, versions loaded in opposite orders
	// (as two replicas scanning a repository might), with a third version
	// in the mix.
	a := twoVersions(t, "fraud", "1", "2", "10")
	b := twoVersions(t, "fraud", "10", "2", "1")
	w := map[string]float64{"1": 60, "2": 30.5, "10": 9.5}
	for _, r := range []*rollout.Router{a, b} {
		if err := r.SetWeights(w); err != nil {
			t.Fatal(err)
		}
	}
	for i := range numKeys {
		key := "user-" + strconv.Itoa(i)
		if va, vb := route(t, a, key), route(t, b, key); va != vb {
			t.Fatalf("key %q: replica a says %q, replica b %q", key, va, vb)
		}
	}
}

func TestKeysDependOnModel(t *testing.T) {
	// The same user is not the canary of every model at once.
	a, b := twoVersions(t, "fraud"), twoVersions(t, "churn")
	setCanary(t, a, 50)
	setCanary(t, b, 50)
	same := 0
	for i := range 10_000 {
		key := "user-" + strconv.Itoa(i)
		if route(t, a, key) == route(t, b, key) {
			same++
		}
	}
	if same < 4500 || same > 5500 {
		t.Errorf("%d of 10000 keys on the same side in two models, want about half", same)
	}
}

func TestRequestsWithoutKeySplitByWeight(t *testing.T) {
	r := twoVersions(t, "fraud")
	setCanary(t, r, 20)
	canary := 0
	const n = 10_000
	for range n {
		if answer(t, r, "") == "2" {
			canary++
		}
	}
	// Binomial(10000, 0.2): sd 0.4 points; 2.5 points is 6 sd.
	if share := 100 * float64(canary) / n; math.Abs(share-20) > 2.5 {
		t.Errorf("%.2f%% of unkeyed requests on a 20%% canary", share)
	}
}

func TestWeightValidation(t *testing.T) {
	r := twoVersions(t, "m")
	for _, w := range []map[string]float64{
		{"1": 50, "2": 49.9},       // sum
		{"1": 50.05, "2": 49.95},   // finer than 0.1
		{"1": 101, "2": -1},        // range
		{"1": math.NaN(), "2": 50}, // NaN
		{},
	} {
		if err := r.SetWeights(w); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("SetWeights(%v): %v, want invalid_argument", w, err)
		}
	}
	if err := r.SetWeights(map[string]float64{"1": 50, "3": 50}); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("SetWeights with an unknown version: %v, want not_found", err)
	}
	if err := r.SetWeights(map[string]float64{"1": 99.9, "2": 0.1}); err != nil {
		t.Errorf("0.1%% steps: %v", err)
	}
	if w := r.Weights(); w["1"] != 99.9 || w["2"] != 0.1 {
		t.Errorf("weights %v", w)
	}
}
