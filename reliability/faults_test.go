package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/redistest"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

// rig is the example server's stack in-process, so a test can read its
// metrics (a ManualReader) and logs (a JSON slog handler): HTTP handler →
// telemetry → [cache] → limiter → [batcher] → what the test gives.
type rig struct {
	url    string
	reader *sdkmetric.ManualReader
	logs   *syncWriter
	client *http.Client
}

type rigOptions struct {
	batch bool
	cache *cache.Cache
}

func newRig(t *testing.T, model serving.Predictor, o rigOptions) *rig {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	p := model
	if o.batch {
		b, err := batch.New(p, batch.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		p = b
	}
	l, err := limit.New(p, limit.WithMaxInFlight(8), limit.WithMaxQueue(64), limit.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	p = l
	if o.cache != nil {
		p = o.cache.Middleware()(p)
	}
	p = telemetry.Middleware(telemetry.WithMeterProvider(mp))(p)
	t.Cleanup(func() { serving.Close(p) })
	logs := &syncWriter{}
	h := httpapi.New(httpapi.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	if err := h.Handle("fraud", p); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	return &rig{url: srv.URL + "/v2/models/fraud/infer", reader: reader, logs: logs, client: client}
}

// fraudRow is a fraud request whose features vary with i.
func fraudRow(i int) []byte {
	return fmt.Appendf(nil, `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[%d,-1.2,0.3,2.1,-0.7,1.5,0,-0.4]}]}`, i)
}

// drive sends n requests from c clients with a deadline each, and returns
// the statuses. A request that got no HTTP answer fails the test: that is
// a request lost.
func (r *rig) drive(t *testing.T, n, c int, body func(i int) []byte, timeout time.Duration) map[int]int {
	t.Helper()
	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for range c {
		wg.Go(func() {
			for i := range work {
				req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body(i)))
				req.Header.Set("Timeout", timeout.String())
				resp, err := r.client.Do(req)
				if err != nil {
					t.Errorf("request %d got no answer: %v", i, err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && !json.Valid(b) {
					t.Errorf("request %d: status %d with a body that is not JSON: %q", i, resp.StatusCode, b)
				}
				mu.Lock()
				status[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return status
}

// requests reads servekit.requests by outcome code.
func (r *rig) requests(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, dp := range sumPoints(t, r.reader, telemetry.MetricRequests) {
		v, _ := dp.Attributes.Value("code")
		out[v.AsString()] += dp.Value
	}
	return out
}

func sumPoints(t *testing.T, reader *sdkmetric.ManualReader, name string) []metricdata.DataPoint[int64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data.(metricdata.Sum[int64]).DataPoints
			}
		}
	}
	return nil
}

// TestFaultyBackend: a model that panics, hangs past the deadline or fails
// on a share of requests. Every request gets an HTTP answer with the
// matching status (500 for panics and errors, 504 for hangs), the metrics
// count each outcome, each panic is logged with its stack, the limiter
// gets every slot back, and the server goes on serving.
func TestFaultyBackend(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batched), func(t *testing.T) {
			// The batcher logs the panics it recovers through slog.Default.
			defLogs := &syncWriter{}
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewJSONHandler(defLogs, nil)))
			defer slog.SetDefault(prev)
			model := orttest.Fraud(t)
			faulty := servingtest.InjectFaults(model, servingtest.Faults{
				Panic: 0.03, Hang: 0.02, Error: 0.05, HangExtra: 20 * time.Millisecond, Seed: 13})
			r := newRig(t, faulty, rigOptions{batch: batched})
			status := r.drive(t, 1500, 16, fraudRow, time.Second)
			c := faulty.Counts()
			t.Logf("statuses %v; injected %+v", status, c)
			codes := r.requests(t)
			t.Logf("servekit.requests by code: %v", codes)
			if c.Panics == 0 || c.Hangs == 0 || c.Errors == 0 {
				t.Fatalf("not every fault was injected: %+v", c)
			}
			for s := range status {
				if s != 200 && s != 500 && s != 504 && s != 429 {
					t.Errorf("status %d (%d times)", s, status[s])
				}
			}
			// Without the batcher, one request is one model call. With it,
			// a fault hits a whole joined run and is then isolated by
			// re-running the members alone, so only totals are checked.
			if !batched {
				if got, want := int64(status[500]), c.Panics+c.Errors; got != want {
					t.Errorf("%d answers 500, want %d (panics + errors)", got, want)
				}
				// Every hang is a 504; on a starved machine a healthy request
				// can miss its deadline too, but each is accounted for.
				if got := int64(status[504]); got < c.Hangs || got+int64(status[200]) != c.Hangs+c.Passed {
					t.Errorf("%d answers 504 and %d 200, want at least %d (hangs) and %d together", got, status[200], c.Hangs, c.Hangs+c.Passed)
				}
				if codes["internal"] != c.Panics+c.Errors || codes["deadline_exceeded"] != int64(status[504]) {
					t.Errorf("servekit.requests %v, want internal %d and deadline_exceeded %d", codes, c.Panics+c.Errors, status[504])
				}
				if n := strings.Count(r.logs.String(), `"msg":"oip: predictor panicked"`); int64(n) != c.Panics {
					t.Errorf("%d panics logged, %d injected", n, c.Panics)
				}
			} else {
				if status[500] == 0 || codes["internal"] == 0 {
					t.Errorf("no 500 with the batcher: statuses %v, codes %v", status, codes)
				}
				if n := strings.Count(defLogs.String(), `"msg":"batch: model panicked"`); int64(n) != c.Panics {
					t.Errorf("%d panics logged by the batcher, %d injected", n, c.Panics)
				}
				if strings.Contains(defLogs.String(), "payload") || strings.Count(defLogs.String(), `"stack"`) != int(c.Panics) {
					t.Errorf("batcher panic logs: want one stack each")
				}
			}
			if int64(status[200]) != codes["ok"] {
				t.Errorf("%d answers 200, servekit.requests ok %d", status[200], codes["ok"])
			}
			for _, dp := range sumPoints(t, r.reader, limit.MetricInFlight) {
				if dp.Value != 0 {
					t.Errorf("limiter slots still held after the storm: %d", dp.Value)
				}
			}
			// Still serving.
			resp, err := r.client.Post(r.url, "application/json", bytes.NewReader(fraudRow(0)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 500 && resp.StatusCode != 504 {
				t.Errorf("after the storm: %d", resp.StatusCode)
			}
		})
	}
}

// TestRedisKilledMidRun: the cache's Redis tier dies while the server is
// busy. Every request is still answered 200 (L2 failures are misses), the
// L2 errors are counted, and the breaker keeps them few: Redis is skipped
// while it is down, not asked once per request.
func TestRedisKilledMidRun(t *testing.T) {
	rs := redistest.Start(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	c, err := cache.New(cache.WithMaxEntries(64), cache.WithRedis(rs.Client(), cache.WithL2Key([]byte("a-32-byte-key-for-the-fault-test"))), cache.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := newRig(t, orttest.Fraud(t), rigOptions{cache: c})
	body := func(i int) []byte { return fraudRow(i % 500) } // more keys than L1 holds: L2 is asked
	before := r.drive(t, 1000, 8, body, 5*time.Second)
	rs.Stop()
	during := r.drive(t, 2000, 8, body, 5*time.Second)
	l2errs := int64(0)
	for _, dp := range sumPoints(t, reader, "servekit.cache.l2.errors") {
		l2errs += dp.Value
	}
	t.Logf("before the kill %v, after %v; L2 errors %d; stats %+v", before, during, l2errs, c.Stats())
	if before[200] != 1000 || during[200] != 2000 {
		t.Errorf("not every request answered 200: before %v, after the kill %v", before, during)
	}
	if l2errs == 0 {
		t.Error("Redis died and no L2 error was counted")
	}
	if l2errs > 200 {
		t.Errorf("%d L2 errors for 2000 requests: the breaker should skip a dead Redis", l2errs)
	}
}

// syncWriter is a log sink safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
