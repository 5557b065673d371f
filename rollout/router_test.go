package rollout_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestConformanceRouter(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			r := newRouter(t, "linear", quiet)
			mustPut(t, r, "1", servingtest.Linear(2))
			mustPut(t, r, "2", servingtest.Linear(2))
			if err := r.SetWeights(map[string]float64{"1": 50, "2": 50}); err != nil {
				t.Fatal(err)
			}
			return r
		},
		Request:       func() *serving.Request { return servingtest.Rows(2, 3, 1) },
		Deterministic: true,
	})
}

func TestConformancePinned(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			r := newRouter(t, "linear", quiet)
			t.Cleanup(func() { r.Close() })
			mustPut(t, r, "1", servingtest.Linear(2))
			mustPut(t, r, "2", servingtest.Linear(2))
			p, ok := r.Version("2")
			if !ok {
				t.Fatal("Version(2) not found")
			}
			return p
		},
		Request:       func() *serving.Request { return servingtest.Rows(2, 3, 1) },
		Deterministic: true,
	})
}

func TestFirstVersionTakesAllLaterJoinAtZero(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	if _, err := r.Predict(context.Background(), keyed("k")); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("Predict with no versions: %v, want unavailable", err)
	}
	var g registry
	mustPut(t, r, "1", g.add("1"))
	mustPut(t, r, "2", g.add("2"))
	if w := r.Weights(); len(w) != 1 || w["1"] != 100 {
		t.Fatalf("weights %v, want 1:100", w)
	}
	for i := range 200 {
		if resp := ask(t, r, keyed(string(rune('a'+i%26))+string(rune(i)))); resp.Version != "1" {
			t.Fatalf("version %q answered with 0 weight", resp.Version)
		}
	}
	if got := r.Versions(); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("Versions %v", got)
	}
}

func TestPinning(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	var g registry
	mustPut(t, r, "1", g.add("1"))
	two := g.add("2")
	mustPut(t, r, "2", two)

	req := keyed("k")
	req.Version = "2"
	before := req.Clone()
	resp := ask(t, r, req)
	if _, err := g.who(resp); err != nil || resp.Version != "2" {
		t.Errorf("pinned to 2: version %q, %v", resp.Version, err)
	}
	if req.Version != before.Version || req.Key != before.Key {
		t.Error("Predict modified the request")
	}

	req.Version = "9"
	_, err := r.Predict(context.Background(), req)
	if serving.CodeOf(err) != serving.NotFound || !errors.Is(err, serving.ErrNotFound) {
		t.Errorf("unknown version: %v, want not_found wrapping ErrNotFound", err)
	}

	two.notReady.Store(true)
	req.Version = "2"
	if _, err := r.Predict(context.Background(), req); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("pinned to a version that is not ready: %v, want unavailable", err)
	}
	p, _ := r.Version("2")
	if serving.IsReady(p) {
		t.Error("pinned Predictor of a version that is not ready says ready")
	}
	if !r.Ready() {
		t.Error("router not ready while its weighted version is")
	}
}

func TestResponseVersionIsTheAnsweringVersion(t *testing.T) {
	// A version whose Predictor labels answers with another name (a model
	// loaded with its own version in metadata) still answers as itself.
	r := newRouter(t, "m", quiet)
	defer r.Close()
	liar := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		return &serving.Response{Version: "42"}, nil
	})
	mustPut(t, r, "7", liar)
	if resp := ask(t, r, keyed("k")); resp.Version != "7" {
		t.Errorf("Response.Version %q, want 7", resp.Version)
	}
}

func TestFallbackWhenWeightedVersionNotReady(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	var g registry
	one, two, three := g.add("1"), g.add("2"), g.add("3")
	mustPut(t, r, "1", one)
	mustPut(t, r, "2", two)
	mustPut(t, r, "3", three)
	if err := r.SetWeights(map[string]float64{"1": 20, "2": 50, "3": 30}); err != nil {
		t.Fatal(err)
	}
	two.notReady.Store(true)
	// Version 2's share goes to the ready version with the most weight (3),
	// not to version 1; the others keep their own keys.
	counts := map[string]int{}
	for i := range 2000 {
		counts[ask(t, r, keyed(keyOf(i))).Version]++
	}
	if counts["2"] != 0 {
		t.Fatalf("%d requests reached a version that is not ready", counts["2"])
	}
	if counts["3"] < 2000*70/100 || counts["1"] > 2000*25/100 || counts["1"] == 0 {
		t.Errorf("split %v, want about 1:20%% 3:80%%", counts)
	}
	st := r.Status()
	for _, v := range st.Versions {
		if v.Version == "2" && v.Ready {
			t.Error("status says version 2 is ready")
		}
	}

	// No version with weight is ready: Unavailable.
	one.notReady.Store(true)
	three.notReady.Store(true)
	if _, err := r.Predict(context.Background(), keyed("k")); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("no weighted version ready: %v, want unavailable", err)
	}
	if r.Ready() {
		t.Error("router ready with no weighted version ready")
	}
}

func TestHotReplaceWaitsForInFlight(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	var g registry
	old := g.add("1")
	old.gate = make(chan struct{})
	mustPut(t, r, "1", old)

	answered := make(chan *serving.Response)
	go func() {
		resp, _ := r.Predict(context.Background(), keyed("k"))
		answered <- resp
	}()
	poll.Until(t, "the request inside", func() bool { return old.calls.Load() > 0 })
	fresh := g.add("1")
	mustPut(t, r, "1", fresh)
	if resp := ask(t, r, keyed("k2")); mustWho(t, &g, resp) != fresh {
		t.Error("a request after Put did not reach the new Predictor")
	}
	if old.closes.Load() != 0 {
		t.Fatal("old Predictor closed with a request inside")
	}
	close(old.gate)
	if resp := <-answered; resp == nil || mustWho(t, &g, resp) != old {
		t.Fatal("the request in flight did not finish on the old Predictor")
	}
	poll.Until(t, "the old version closed", func() bool { return old.closes.Load() == 1 })
	if old.late.Load() != 0 {
		t.Error("old Predictor called after Close")
	}
	if err := r.Put("1", fresh); err != nil || fresh.closes.Load() != 0 {
		t.Errorf("putting the serving Predictor again: %v, closes %d", err, fresh.closes.Load())
	}
}

func TestRemove(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	var g registry
	one, two := g.add("1"), g.add("2")
	mustPut(t, r, "1", one)
	mustPut(t, r, "2", two)
	if err := r.Remove(context.Background(), "1"); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Remove of the version with all the traffic: %v, want invalid_argument", err)
	}
	if err := r.Remove(context.Background(), "9"); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("Remove of an unknown version: %v, want not_found", err)
	}

	// Remove waits for the requests in flight, bounded by ctx.
	two.gate = make(chan struct{})
	pinned := keyed("k")
	pinned.Version = "2"
	errc := make(chan error, 1)
	go func() {
		_, err := r.Predict(context.Background(), pinned)
		errc <- err
	}()
	poll.Until(t, "the pinned request inside", func() bool { return two.calls.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Remove(ctx, "2"); serving.CodeOf(err) != serving.DeadlineExceeded {
		t.Errorf("Remove with a request inside past its deadline: %v, want deadline_exceeded", err)
	}
	if two.closes.Load() != 0 {
		t.Fatal("removed version closed with a request inside")
	}
	if _, ok := r.Version("2"); ok {
		t.Error("removed version still listed")
	}
	close(two.gate)
	if err := <-errc; err != nil {
		t.Errorf("request in flight during Remove: %v", err)
	}
	poll.Until(t, "version two closed", func() bool { return two.closes.Load() == 1 })

	// The last version can go, weight and all; the next one takes 100 %.
	if err := r.Remove(context.Background(), "1"); err != nil {
		t.Fatalf("Remove of the last version: %v", err)
	}
	if one.closes.Load() != 1 {
		t.Error("Remove returned before closing an idle version")
	}
	three := g.add("3")
	mustPut(t, r, "3", three)
	if w := r.Weights(); w["3"] != 100 {
		t.Errorf("weights after re-adding %v, want 3:100", w)
	}
}

func TestCloseClosesEveryVersionOnce(t *testing.T) {
	r := newRouter(t, "m", quiet)
	var g registry
	a, b := g.add("1"), g.add("2")
	mustPut(t, r, "1", a)
	mustPut(t, r, "2", b)
	replaced := g.add("2")
	mustPut(t, r, "2", replaced)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, in := range []*instance{a, b, replaced} {
		if n := in.closes.Load(); n != 1 {
			t.Errorf("instance %d of version %s closed %d times", in.id, in.version, n)
		}
	}
	if err := r.Put("3", g.add("3")); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	for _, f := range []func() error{
		func() error { return r.SetWeights(map[string]float64{"1": 100}) },
		func() error { return r.Switch("1") },
		func() error { return r.Rollback() },
		func() error { return r.Remove(context.Background(), "1") },
	} {
		if err := f(); !errors.Is(err, serving.ErrClosed) {
			t.Errorf("change after Close: %v, want ErrClosed", err)
		}
	}
}

func TestCloseErrorsJoined(t *testing.T) {
	r := newRouter(t, "m", quiet)
	boom := errors.New("boom")
	mustPut(t, r, "1", closeFails{servingtest.Linear(1), boom})
	if err := r.Close(); !errors.Is(err, boom) {
		t.Errorf("Close: %v, want the version's close error", err)
	}
}

type closeFails struct {
	*servingtest.Fake
	err error
}

func (c closeFails) Close() error { c.Fake.Close(); return c.err }

func TestPanicInVersionIsInternalError(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	mustPut(t, r, "1", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		panic("bad model")
	}))
	_, err := r.Predict(context.Background(), keyed("k"))
	if serving.CodeOf(err) != serving.Internal {
		t.Fatalf("panicking version: %v, want internal", err)
	}
	st := r.Status().Versions[0]
	if st.Failures != 1 || st.InFlight != 0 || st.Errors[serving.Internal] != 1 {
		t.Errorf("stats after a panic: %+v", st.Stats)
	}
}

func TestInvalidVersionNames(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	for _, v := range []string{"", "a/b", "a b", "x\x00", "\xff"} {
		if err := r.Put(v, servingtest.Linear(1)); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("Put(%q): %v, want invalid_argument", v, err)
		}
	}
	if err := r.Put("1", nil); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Put(nil): %v", err)
	}
}

func TestMetadataAndVersioned(t *testing.T) {
	r := newRouter(t, "fraud", quiet)
	defer r.Close()
	mustPut(t, r, "1", servingtest.Linear(2))
	mustPut(t, r, "2", servingtest.Linear(3))
	md := r.Metadata()
	if md.Name != "fraud" || md.Version != "1" || md.Inputs[0].Shape[1] != 2 {
		t.Errorf("router metadata %+v", md)
	}
	vs, ok := serving.VersionsOf(r)
	if !ok {
		t.Fatal("router is not serving.Versioned")
	}
	p, ok := vs.Version("2")
	if !ok {
		t.Fatal("Version(2) missing")
	}
	md, _ = serving.MetadataOf(p)
	if md.Version != "2" || md.Inputs[0].Shape[1] != 3 {
		t.Errorf("pinned metadata %+v", md)
	}
	if _, ok := vs.Version("3"); ok {
		t.Error("Version(3) found")
	}
}

func keyOf(i int) string { return "user-" + strconv.Itoa(i) }

func mustWho(t testing.TB, g *registry, resp *serving.Response) *instance {
	t.Helper()
	in, err := g.who(resp)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	if r, err := rollout.New("m", rollout.WithStatsWindow(time.Millisecond)); serving.CodeOf(err) != serving.InvalidArgument || r != nil {
		t.Errorf("a 1ms stats window: %v, %v; want an InvalidArgument error, not a window raised silently", r, err)
	}
	r, err := rollout.New("m", rollout.WithStatsWindow(6*time.Millisecond))
	if err != nil {
		t.Fatalf("the smallest window: %v", err)
	}
	r.Close()
}
