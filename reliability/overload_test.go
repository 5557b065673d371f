package reliability_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/loadtest"
)

// overloadPlan sizes one overload run.
type overloadPlan struct {
	warm, measure, overload time.Duration
	factor                  float64 // overload rate / capacity
	outstanding             int     // open-loop cap on unanswered requests
	recoverWithin           time.Duration
	steady                  float64 // throughput after the load, as a fraction of capacity
	checkP99                bool    // the wall-clock p99 ratio: only in the full run
}

var (
	// ciOverload is short and checks only what holds on a busy shared
	// machine: every refusal is a 429/503 with Retry-After, nothing is
	// lost, memory and goroutines stay bounded, the server recovers.
	ciOverload = overloadPlan{warm: time.Second, measure: 3 * time.Second, overload: 4 * time.Second,
		factor: 10, outstanding: 512, recoverWithin: 10 * time.Second, steady: 0.5}
	// fullOverload (make overload) adds the p99 ratio, with longer phases.
	fullOverload = overloadPlan{warm: 3 * time.Second, measure: 10 * time.Second, overload: 20 * time.Second,
		factor: 10, outstanding: 1024, recoverWithin: 5 * time.Second, steady: 0.8, checkP99: true}
)

// TestOverload measures the example server's capacity on a model whose
// run dominates its request (closed loop), drives it at 10× that (open
// loop) and checks that it sheds the excess: admitted requests keep their
// latency, the rest are refused at once with 429 and Retry-After, memory
// and goroutines stay bounded, and full throughput returns as soon as the
// load stops.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("overload test: skipped with -short")
	}
	plan := ciOverload
	if *overloadFull {
		plan = fullOverload
	}
	srv := server(t, "--model", "heavy="+heavyModel(t), "--max-timeout", "10s")
	url := srv.Base + "/v2/models/heavy/infer"
	next := func(i int64) loadtest.Request { return loadtest.Request{URL: url, Body: heavyBody(i % 1024)} }
	slots := serverCPUs() // the server's automatic -max-inflight
	client := loadtest.Client(plan.outstanding)
	defer client.CloseIdleConnections()
	ctx := context.Background()

	if _, err := loadtest.Closed(ctx, client, next, slots, plan.warm); err != nil {
		t.Fatal(err)
	}
	const dur = "servekit_request_duration_seconds"
	okBefore, _ := srv.Histogram(dur, `code="ok"`)
	base, _ := loadtest.Closed(ctx, client, next, slots, plan.measure)
	okBase, _ := srv.Histogram(dur, `code="ok"`)
	sat, _ := loadtest.Closed(ctx, client, next, 2*slots, plan.measure)
	capacity := max(base.Throughput(), sat.Throughput())
	baseP99 := loadtest.Pct(base.OK, 99)
	t.Logf("capacity: c=%d %s", slots, base)
	t.Logf("capacity: c=%d %s", 2*slots, sat)
	if base.Errors+sat.Errors > 0 || len(base.OK) == 0 {
		t.Fatalf("closed loop had errors or no answers:\n%s\n%s", base, sat)
	}
	rssBefore, _ := srv.RSS()
	gBefore, _ := srv.Goroutines()

	cpuBefore, _ := srv.Metric("process_cpu_time_seconds_total", "")
	okOver0, _ := srv.Histogram(dur, `code="ok"`)
	rejOver0, _ := srv.Histogram(dur, `code="resource_exhausted"`)
	sampler := loadtest.StartSampler(srv, 250*time.Millisecond)
	sampler.Phase("overload")
	rate := plan.factor * capacity
	over, _ := loadtest.Open(ctx, client, next, rate, plan.overload, plan.outstanding)
	loadEnd := time.Now()
	cpuAfter, _ := srv.Metric("process_cpu_time_seconds_total", "")
	okOver1, _ := srv.Histogram(dur, `code="ok"`)
	rejOver1, _ := srv.Histogram(dur, `code="resource_exhausted"`)
	// The server's own view (servekit.request.duration, from the chain's
	// entry, after the HTTP read): what admission control decides. The
	// client's view adds the time a request waits for the CPU before its
	// bytes are read, and the generator's own delays when it is starved.
	srvBase := seconds(okBase.Since(okBefore).Quantile(0.99))
	srvOK := seconds(okOver1.Since(okOver0).Quantile(0.99))
	srvRej := seconds(rejOver1.Since(rejOver0).Quantile(0.99))
	kept := float64(over.Sent) / (rate * plan.overload.Seconds())
	// The server's CPU per request under overload: what a refusal costs,
	// with the admitted runs' share included.
	cpuPerReq := time.Duration((cpuAfter - cpuBefore) / float64(max(over.Sent, 1)) * float64(time.Second))
	sampler.Phase("recovery")
	t.Logf("overload: target %.0f/s, sent %.0f/s: %s", rate, float64(over.Sent)/plan.overload.Seconds(), over)

	// Recovery: closed loop at the server's concurrency in half-second
	// windows. The steady throughput is the median of the last windows;
	// recovery is the end of the first window with no refusal at 90% of
	// the lower of steady and the capacity measured before. On a shared
	// machine the neighbours' load moves both by more than 10%, either
	// way: in the two CI runs of five that failed on steady alone
	// ("after 11 s"), the neighbours' load (other packages' tests under
	// `go test ./...`) fell during the recovery phase, and steady came
	// out 15–30% above capacity. A server that has not recovered is below
	// both.
	var windows []*loadtest.Result
	for time.Since(loadEnd) < plan.recoverWithin+2*time.Second {
		w, _ := loadtest.Closed(ctx, client, next, slots, 500*time.Millisecond)
		windows = append(windows, w)
	}
	steady := medianThroughput(windows[max(0, len(windows)-4):])
	var recovered time.Duration
	for i, w := range windows {
		if w.Throughput() >= 0.9*min(steady, capacity) && len(w.Rejected) == 0 && w.Errors == 0 {
			recovered = time.Duration(i+1) * 500 * time.Millisecond
			break
		}
	}
	samples, _ := sampler.Stop()
	writeSamples(t, "overload.csv", samples)

	var rssPeak, gPeak int64
	for _, s := range samples {
		rssPeak, gPeak = max(rssPeak, s.RSS), max(gPeak, s.Goroutines)
	}
	admP99, rejP50, rejP99 := loadtest.Pct(over.OK, 99), loadtest.Pct(over.Rejected, 50), loadtest.Pct(over.Rejected, 99)
	summary := fmt.Sprintf("capacity %.0f req/s (c=%d: %.0f, c=%d: %.0f); unloaded p99 %v (c=%d); at %.0fx (%.0f req/s offered, %.0f sent): "+
		"admitted %d (%.0f req/s), p99 %v = %.2fx unloaded; refused %d (p50 %v, p99 %v), without Retry-After %d; other statuses %v, errors %d; "+
		"server CPU %v per request sent; RSS %.0f -> peak %.0f MiB; goroutines %d -> peak %d; after the load: %.0f req/s steady, reached within %v",
		capacity, slots, base.Throughput(), 2*slots, sat.Throughput(), baseP99, slots, plan.factor, rate, float64(over.Sent)/plan.overload.Seconds(),
		len(over.OK), float64(len(over.OK))/over.Elapsed.Seconds(), admP99, float64(admP99)/float64(baseP99),
		len(over.Rejected), rejP50, rejP99, over.NoRetryAfter, others(over.Status), over.Errors,
		cpuPerReq.Round(time.Microsecond), mib(rssBefore), mib(rssPeak), gBefore, gPeak, steady, recovered)
	summary += fmt.Sprintf("; server side (bucket bounds of servekit.request.duration): unloaded p99 <= %v, admitted p99 <= %v, refused p99 <= %v; the generator sent %.0f%% of the offered rate",
		srvBase, srvOK, srvRej, 100*kept)
	t.Log(summary)
	writeText(t, "overload.txt", summary+"\n")

	if over.Errors > 0 {
		t.Errorf("%d requests got no answer at all (first: %s)", over.Errors, over.FirstError)
	}
	if o := others(over.Status); len(o) > 0 {
		t.Errorf("statuses other than 200/429/503 under overload: %v", o)
	}
	if len(over.Rejected) == 0 {
		t.Errorf("nothing was refused at %.0fx capacity: the test did not overload the server", plan.factor)
	}
	if over.NoRetryAfter > 0 {
		t.Errorf("%d refusals without Retry-After", over.NoRetryAfter)
	}
	if len(over.OK) == 0 {
		t.Error("no request was admitted under overload")
	}
	// Bounded: the server's goroutines follow the connections (the client
	// opens at most plan.outstanding), not the requests sent.
	if limit := gBefore + 2*int64(plan.outstanding) + 64; gPeak > limit {
		t.Errorf("goroutines peaked at %d (> %d)", gPeak, limit)
	}
	if rssPeak > 2*rssBefore+(64<<20) {
		t.Errorf("RSS peaked at %.0f MiB from %.0f MiB", mib(rssPeak), mib(rssBefore))
	}
	if recovered == 0 || recovered > plan.recoverWithin {
		t.Errorf("throughput back to 90%% of min(steady, capacity) after %v, want within %v", recovered, plan.recoverWithin)
	}
	if steady < plan.steady*capacity {
		t.Errorf("steady throughput after the load %.0f req/s, want at least %.0f%% of capacity %.0f", steady, 100*plan.steady, capacity)
	}
	if plan.checkP99 {
		// Server side, always: buckets are 2 to 2.5x apart, so "within 2x"
		// reads as "at most one bucket above".
		if srvOK > srvBase*5/2 {
			t.Errorf("server-side admitted p99 <= %v, more than one bucket above the unloaded <= %v", srvOK, srvBase)
		}
		if srvRej > srvBase {
			t.Errorf("server-side refusal p99 <= %v > the unloaded p99 <= %v: refusals must be quick", srvRej, srvBase)
		}
		// Client side, only when the generator kept up: otherwise the
		// offered load never arrived (the generator starved, or every one of
		// its connections was waiting on the server), and the run cannot say
		// how the server meets 10x. Said loudly: it is not a pass.
		if kept < 0.95 {
			t.Logf("NOT JUDGED: client-side p99: the generator sent only %.0f%% of the offered rate (starved, or all %d connections waiting on a server that reads requests slower than they come)", 100*kept, plan.outstanding)
		} else {
			if admP99 > 2*baseP99 {
				t.Errorf("admitted p99 %v > 2x the unloaded p99 %v", admP99, baseP99)
			}
			if rejP99 > baseP99 {
				t.Errorf("refusal p99 %v > the unloaded p99 %v: refusals must be quick", rejP99, baseP99)
			}
		}
	}
}

func medianThroughput(rs []*loadtest.Result) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.Throughput()
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// others returns the counts of statuses other than 200, 429 and 503.
func others(status map[int]int64) map[int]int64 {
	out := map[int]int64{}
	for s, n := range status {
		if s != 200 && s != 429 && s != 503 {
			out[s] = n
		}
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func writeSamples(t *testing.T, name string, samples []loadtest.Sample) {
	t.Helper()
	var b strings.Builder
	if err := loadtest.WriteCSV(&b, samples); err != nil {
		t.Fatal(err)
	}
	writeText(t, name, b.String())
}

func writeText(t *testing.T, name, text string) {
	t.Helper()
	p := output(t, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", p)
}
