package predlog_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	goleak.VerifyTestMain(m)
}

// memSink keeps what it is given; gate, when set, holds every Write.
type memSink struct {
	mu     sync.Mutex
	recs   []predlog.Record
	gate   chan struct{}
	closed bool
}

func (s *memSink) Write(ctx context.Context, recs []predlog.Record) error {
	if s.gate != nil && len(recs) > 0 {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *memSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *memSink) records() []predlog.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]predlog.Record(nil), s.recs...)
}

func TestConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			return newLogger(t, servingtest.Linear(3), &memSink{})
		},
		Request:       func() *serving.Request { return servingtest.Rows(3, 2, 1) },
		Deterministic: true,
	})
}

func TestLogsCopies(t *testing.T) {
	sink := &memSink{}
	l := newLogger(t, servingtest.Linear(2), sink)
	req := servingtest.Rows(2, 2, 1)
	req.ID = "r1"
	resp, err := l.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := serving.Values[float32](req.Inputs[0])
	x[0] = 99 // the caller reuses its buffers once Predict returned
	y, _ := serving.Values[float32](resp.Outputs[0])
	y[0] = 99
	l.Close()
	recs := sink.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	lx, _ := serving.Values[float32](r.Inputs[0])
	ly, _ := serving.Values[float32](r.Outputs[0])
	if r.ID != "r1" || r.Model != "linear" || lx[0] != 1 || ly[0] != 3 || r.Err != "" {
		t.Errorf("record %+v: inputs %v outputs %v", r, lx, ly)
	}
	if _, err := l.Predict(context.Background(), req); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Predict after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
}

func TestSampling(t *testing.T) {
	sink := &memSink{}
	fail := errors.New("boom")
	var calls atomic.Int64
	p := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		if calls.Add(1)%10 == 0 {
			return nil, serving.NewError(serving.Internal, fail)
		}
		return &serving.Response{}, nil
	})
	l := newLogger(t, p, sink, predlog.WithSampleRate(0.2))
	for range 2000 {
		l.Predict(context.Background(), &serving.Request{Model: "m"})
	}
	l.Close()
	var ok, failed int
	for _, r := range sink.records() {
		if r.Err != "" {
			failed++
			if r.Code != serving.Internal || r.Err != "boom" || r.Model != "m" {
				t.Errorf("failed record %+v", r)
			}
		} else {
			ok++
		}
	}
	if failed != 200 {
		t.Errorf("%d failed calls logged, want all 200", failed)
	}
	if ok < 250 || ok > 470 { // 20% of 1800 is 360; 5 sigma is about ±85
		t.Errorf("%d of 1800 successes logged at rate 0.2", ok)
	}
	if s := l.Stats(); s.Logged != int64(ok+failed) || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNeverBlocks(t *testing.T) {
	sink := &memSink{gate: make(chan struct{})}
	l := newLogger(t, servingtest.Linear(1), sink, predlog.WithQueueSize(4), predlog.WithMaxBatch(1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			if _, err := l.Predict(context.Background(), servingtest.Rows(1, 1, 0)); err != nil {
				t.Error(err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Predict blocked on a stuck sink")
	}
	if s := l.Stats(); s.Dropped < 95 {
		t.Errorf("dropped %d of 100 with a stuck sink and a queue of 4", s.Dropped)
	}
	close(sink.gate)
	l.Close()
	if s := l.Stats(); s.Logged+s.Dropped != 100 {
		t.Errorf("stats %+v: logged + dropped != 100", s)
	}
}

func TestFileSinkRotatesAndReplays(t *testing.T) {
	for _, format := range []rowio.Format{rowio.JSONL, rowio.CSV, rowio.Parquet} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			sink, err := predlog.NewFileSink(dir, format, predlog.WithMaxBytes(4<<10))
			if err != nil {
				t.Fatal(err)
			}
			model := servingtest.Linear(3)
			l := newLogger(t, model, sink)
			var want []float32
			for i := range 200 {
				resp, err := l.Predict(context.Background(), servingtest.Rows(3, 1+i%3, float32(i)))
				if err != nil {
					t.Fatal(err)
				}
				y, _ := serving.Values[float32](resp.Outputs[0])
				want = append(want, y...)
			}
			if err := errors.Join(l.Close(), sink.Close()); err != nil {
				t.Fatal(err)
			}
			model = servingtest.Linear(3) // the logger closed the one it wrapped
			files, _ := filepath.Glob(filepath.Join(dir, "predictions-*"+format.Ext()))
			if len(files) < 3 {
				t.Fatalf("%d files: want rotation by size", len(files))
			}
			if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
			// Each logged file is a job input: replaying it gives the logged answers.
			var got []float32
			for i, f := range files {
				out := filepath.Join(t.TempDir(), "out")
				if _, err := job.Run(context.Background(), model, f, out, job.WithOutputFormat(rowio.JSONL)); err != nil {
					t.Fatalf("replay %s: %v", f, err)
				}
				b, _ := os.ReadFile(filepath.Join(out, job.PartFile(0, rowio.JSONL)))
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					var row struct{ Y []float32 }
					if err := json.Unmarshal([]byte(line), &row); err != nil {
						t.Fatalf("file %d: %v", i, err)
					}
					got = append(got, row.Y...)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("replayed %d values, logged %d; they differ", len(got), len(want))
			}
		})
	}
}

func TestFileSinkRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	sink, _ := predlog.NewFileSink(dir, rowio.JSONL, predlog.WithMaxAge(20*time.Millisecond))
	l := newLogger(t, servingtest.Linear(1), sink, predlog.WithTick(5*time.Millisecond))
	defer l.Close()
	l.Predict(context.Background(), servingtest.Rows(1, 1, 0))
	poll.Until(t, "an idle file rotated by age", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "predictions-*.jsonl"))
		return len(files) == 1
	})
}

func TestFailedCallsGetTheirOwnFile(t *testing.T) {
	dir := t.TempDir()
	sink, _ := predlog.NewFileSink(dir, rowio.Parquet)
	l := newLogger(t, servingtest.Linear(2), sink)
	l.Predict(context.Background(), servingtest.Rows(2, 1, 0))
	l.Predict(context.Background(), servingtest.Rows(3, 1, 0)) // wrong width: invalid_argument
	l.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) != 2 {
		t.Fatalf("files %v, want one for answers and one for errors", files)
	}
	var errs int
	for _, f := range files {
		r, err := rowio.Open(f, 0, []rowio.Field{{Name: predlog.ColError, Type: serving.Bytes}, {Name: predlog.ColCode, Type: serving.Bytes}})
		if err != nil {
			continue // the answers' file has no error column
		}
		var fr rowio.Frame
		if err := r.Read(&fr, 10); err != nil {
			t.Fatal(err)
		}
		r.Close()
		errs++
		if code := string(fr.Cols[1].Data.([][]byte)[0]); code != "invalid_argument" {
			t.Errorf("code %q", code)
		}
	}
	if errs != 1 {
		t.Errorf("%d error files", errs)
	}
}

func TestCloudEvents(t *testing.T) {
	type event struct {
		header http.Header
		body   []byte
	}
	for _, structured := range []bool{false, true} {
		var mu sync.Mutex
		var events []event
		var failFirst atomic.Int64
		failFirst.Store(2)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failFirst.Add(-1) >= 0 {
				http.Error(w, "busy", http.StatusServiceUnavailable) // retried
				return
			}
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			events = append(events, event{r.Header.Clone(), b})
			mu.Unlock()
		}))
		opts := []predlog.CloudEventsOption{predlog.WithRetries(3, time.Millisecond), predlog.WithSource("test")}
		if structured {
			opts = append(opts, predlog.WithStructured())
		}
		l := newLogger(t, servingtest.Linear(2), newCE(t, srv.URL, opts...))
		req := servingtest.Rows(2, 1, 5)
		req.ID = "abc"
		l.Predict(context.Background(), req)
		l.Close()
		srv.Close()
		if len(events) != 2 || l.Stats().Logged != 1 {
			t.Fatalf("structured=%v: %d events, stats %+v", structured, len(events), l.Stats())
		}
		for i, typ := range []string{predlog.EventRequest, predlog.EventResponse} {
			e := events[i]
			var data json.RawMessage
			if structured {
				var doc map[string]json.RawMessage
				if err := json.Unmarshal(e.body, &doc); err != nil || e.header.Get("Content-Type") != "application/cloudevents+json" {
					t.Fatalf("structured event: %v %s", err, e.body)
				}
				if string(doc["specversion"]) != `"1.0"` || string(doc["id"]) != `"abc"` || string(doc["type"]) != `"`+typ+`"` || string(doc["source"]) != `"test"` {
					t.Errorf("structured attributes %s", e.body)
				}
				data = doc["data"]
			} else {
				if e.header.Get("Ce-Specversion") != "1.0" || e.header.Get("Ce-Id") != "abc" || e.header.Get("Ce-Type") != typ || e.header.Get("Ce-Source") != "test" || e.header.Get("Ce-Time") == "" {
					t.Errorf("binary headers %v", e.header)
				}
				data = e.body
			}
			// The bodies are the protocol codec's (oipjson), as the
			// transports write them.
			want := `{"id":"abc","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[5,6]}]}`
			if i == 1 {
				want = `{"id":"abc","model_name":"linear","outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[11,13]}]}`
			}
			if string(data) != want {
				t.Errorf("data %s\nwant %s", data, want)
			}
		}
	}
}

// NaN and ±Inf in a record reach the collector as the transports write
// them (the codec's policy): "NaN", "Infinity", "-Infinity" strings, in a
// body every JSON parser takes. The logger once had a policy of its own
// (null), so a collector saw what no client was ever answered.
func TestCloudEventsNonFinite(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	model := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		y, _ := serving.NewTensor("y", []int64{1, 2}, []float32{float32(math.NaN()), float32(math.Inf(-1))})
		return &serving.Response{Model: "m", Version: "1", Outputs: []serving.Tensor{y}}, nil
	})
	l := newLogger(t, model, newCE(t, srv.URL))
	x, _ := serving.NewTensor("x", []int64{1}, []float64{math.Inf(1)})
	if _, err := l.Predict(context.Background(), &serving.Request{ID: "n", Model: "m", Inputs: []serving.Tensor{x}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	srv.Close()
	if len(bodies) != 2 {
		t.Fatalf("%d events", len(bodies))
	}
	for i, want := range []string{`"data":["Infinity"]`, `"data":["NaN","-Infinity"]`} {
		if !json.Valid(bodies[i]) || !strings.Contains(string(bodies[i]), want) {
			t.Errorf("event %d: %s, want valid JSON with %s", i, bodies[i], want)
		}
	}
}

func TestCloudEventsRetriesAreBounded(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	var sinkErr atomic.Value
	l := newLogger(t, servingtest.Linear(1), newCE(t, srv.URL, predlog.WithRetries(2, time.Millisecond)),
		predlog.WithErrorHandler(func(err error) { sinkErr.Store(err) }))
	l.Predict(context.Background(), servingtest.Rows(1, 1, 0))
	l.Close()
	if posts.Load() != 6 { // two events, 1 + 2 tries each
		t.Errorf("%d POSTs, want 6", posts.Load())
	}
	if s := l.Stats(); s.Failed != 1 || sinkErr.Load() == nil {
		t.Errorf("stats %+v, error %v", s, sinkErr.Load())
	}
}

func newLogger(tb testing.TB, next serving.Predictor, sink predlog.Sink, opts ...predlog.Option) *predlog.Logger {
	tb.Helper()
	l, err := predlog.New(next, sink, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func newCE(tb testing.TB, url string, opts ...predlog.CloudEventsOption) *predlog.CloudEvents {
	tb.Helper()
	c, err := predlog.NewCloudEvents(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
