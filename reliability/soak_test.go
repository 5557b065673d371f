package reliability_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/loadtest"
)

// soakPlan sizes a soak run: the short one runs in CI, -soak 10m (make
// soak) the full one.
type soakPlan struct {
	duration, warmup time.Duration
	every            time.Duration // sampling under load; a quiet sample follows every 5
	window           int           // quiet samples per median
}

func soakPlanFor(d time.Duration) soakPlan {
	if d <= 0 {
		return soakPlan{duration: 50 * time.Second, warmup: 15 * time.Second, every: 400 * time.Millisecond, window: 3}
	}
	return soakPlan{duration: d, warmup: min(d/5, 2*time.Minute), every: 2 * time.Second, window: 5}
}

// soakMix is the traffic of a soak run, by the request's index: repeated
// bodies (cache hits), valid rows from a bounded set (misses until the
// cache holds them all), bad requests (400), requests the client cancels
// after a millisecond, and the V1 route. With versions (a model
// repository serving two), a share is pinned to the older version and
// carries sticky routing keys, as canary traffic does.
func soakMix(base string, versions bool) loadtest.Next {
	v2 := base + "/v2/models/fraud/infer"
	v1 := base + "/v1/models/fraud:predict"
	pinned := base + "/v2/models/fraud/versions/1/infer"
	bad := [][]byte{
		[]byte(`{"inputs":[`),
		[]byte(`{"inputs":[{"name":"features","shape":[1,7],"datatype":"FP32","data":[1,2,3,4,5,6,7]}]}`),
		[]byte(`{"inputs":[{"name":"nope","shape":[1,8],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`),
		[]byte(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"INT8","data":[1,2,3,4,5,6,7,300]}]}`),
	}
	return func(i int64) loadtest.Request {
		switch k := i % 20; {
		case k < 8: // hits: 16 hot rows
			return loadtest.Request{URL: v2, Body: fraudRow(int(i % 16))}
		case k < 13: // misses at first: 4096 rows, then hits
			return loadtest.Request{URL: v2, Body: fraudRow(int(1000 + i%4096))}
		case k < 15:
			return loadtest.Request{URL: v2, Body: bad[i%int64(len(bad))]}
		case k < 17:
			return loadtest.Request{URL: v2, Body: fraudRow(int(20_000 + i%2048)), Cancel: time.Millisecond}
		case k < 19 && versions:
			url := v2
			if k == 17 {
				url = pinned
			}
			h := http.Header{"X-Routing-Key": {fmt.Sprint("user-", i%97)}}
			return loadtest.Request{URL: url, Body: fraudRow(int(i % 256)), Header: h}
		default:
			return loadtest.Request{URL: v1, Body: fmt.Appendf(nil, `{"instances":[[%d,0.1,0.2,0.3,0.4,0.5,1,0]]}`, i%64)}
		}
	}
}

// TestSoak runs mixed traffic against the example server (batching and
// caching on) while sampling its RSS and goroutines, and checks that after
// warm-up neither drifts by more than 10%: medians of the first and last
// windows, and every window's median in between. A leak of ORT values,
// tensors, pooled buffers or goroutines grows with the requests served and
// shows as drift. The curves go to soak.csv, a summary to soak.txt.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	plan := soakPlanFor(*soakFor)
	args := []string{"--batch", "--cache", "--cache-entries", "10000"}
	// From a model repository, two versions serve and version 1 is
	// hot-reloaded every few rounds: sessions opened and closed under load.
	dir := fraudRepo(t, "1", "2")
	args = append(args, "--model-repository", dir, "--model-control-mode", "poll", "--repository-poll-secs", "0.25")
	srv := server(t, args...)
	client := loadtest.Client(16)
	defer client.CloseIdleConnections()
	sampler := loadtest.StartSampler(srv, plan.every)
	sampler.Phase("load")
	ctx := context.Background()
	next := soakMix(srv.Base, true)
	reloads := 0
	// Rounds of load, each followed by a quiet moment with no request or
	// connection open, when the server's goroutines are its own: under
	// load their count also follows the connections (one or two each),
	// whose churn (cancelled requests reconnect) is noise of ±15% on a
	// base of 30, where a leak of one goroutine per thousand requests would
	// hide. RSS is read both ways.
	var res, warm loadtest.Result
	start := time.Now()
	var offset int64
	for n := 0; time.Since(start) < plan.duration; n++ {
		if n%3 == 2 {
			reloads++
			putFile(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, float32(reloads%5)/10))
		}
		round := min(plan.every*5, plan.duration-time.Since(start))
		r, _ := loadtest.Closed(ctx, client, func(i int64) loadtest.Request { return next(offset + i) }, 8, round)
		offset += r.Sent
		client.CloseIdleConnections()
		time.Sleep(300 * time.Millisecond)
		if time.Since(start) < plan.warmup {
			warm.Add(r)
			sampler.Take(srv, "quiet-warmup")
			continue
		}
		res.Add(r)
		sampler.Take(srv, "quiet")
	}
	samples, failed := sampler.Stop()
	writeSamples(t, "soak.csv", samples)

	var soak []loadtest.Sample
	for _, s := range samples {
		if s.Phase == "quiet" {
			soak = append(soak, s)
		}
	}
	rss := loadtest.Measure(soak, plan.window, loadtest.RSSOf)
	gor := loadtest.Measure(soak, plan.window, loadtest.GoroutinesOf)
	loaded := countLines(srv.Output(), `msg="version ready"`, "model=fraud", "version=1")
	t.Logf("%d reloads of version 1 asked, %d loads logged, %d failures", reloads, loaded, countLines(srv.Output(), "reload failed"))
	if loaded < reloads/2 {
		t.Errorf("only %d of %d reloads happened", loaded, reloads)
	}
	summary := fmt.Sprintf("soak %v (warm-up %v, versions and %d hot reloads), 8 clients: %d requests after warm-up (%.0f req/s), statuses %v, cancelled by the client %d, errors %d; "+
		"RSS baseline %.1f MiB, last %.3fx, min %.3fx, max %.3fx; goroutines baseline %.0f, last %.3fx, min %.3fx, max %.3fx; %d quiet samples, one per %v of load (%d failed readings)",
		plan.duration, plan.warmup, reloads, res.Sent, float64(res.Sent)/res.Elapsed.Seconds(), res.Status, res.Canceled, res.Errors,
		rss.Baseline/(1<<20), rss.Last, rss.Min, rss.Max, gor.Baseline, gor.Last, gor.Min, gor.Max, len(soak), plan.every*5, failed)
	t.Log(summary)
	writeText(t, "soak.txt", summary+"\n")

	if len(soak) < 2*plan.window {
		t.Fatalf("%d samples after warm-up, want at least %d", len(soak), 2*plan.window)
	}
	if warm.Errors+res.Errors > 0 {
		t.Errorf("%d requests got no answer (first: %s%s)", warm.Errors+res.Errors, warm.FirstError, res.FirstError)
	}
	for s, n := range res.Status {
		if s != http.StatusOK && s != http.StatusBadRequest {
			t.Errorf("status %d (%d times)", s, n)
		}
	}
	if res.Status[http.StatusOK] == 0 || res.Status[http.StatusBadRequest] == 0 || res.Canceled == 0 {
		t.Errorf("the mix did not exercise every kind: statuses %v, cancelled %d", res.Status, res.Canceled)
	}
	for name, series := range map[string]func(loadtest.Sample) float64{"RSS": loadtest.RSSOf, "goroutines": loadtest.GoroutinesOf} {
		if worst := worstWindow(soak, plan.window, series); worst > 1.10 {
			t.Errorf("%s: a window's median reached %.3fx the baseline after warm-up (limit 1.10)", name, worst)
		}
	}
}

// worstWindow is the largest median of window consecutive samples, over
// the baseline (the first window's median).
func worstWindow(samples []loadtest.Sample, window int, series func(loadtest.Sample) float64) float64 {
	base := loadtest.Measure(samples[:window*2], window, series).Baseline
	worst := 0.0
	for i := 0; i+window <= len(samples); i++ {
		m := loadtest.Measure(append(samples[i:i+window:i+window], samples[i:i+window]...), window, series).Baseline
		worst = math.Max(worst, m/base)
	}
	return worst
}
