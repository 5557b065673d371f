package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request is what a load loop sends: a POST of Body to URL with Header.
// Cancel, when positive, cancels the request that long after it was sent
// (a client that gives up).
type Request struct {
	URL    string
	Body   []byte
	Header http.Header
	Cancel time.Duration
}

// Next picks the request to send; i counts sends from 0. It must be safe
// for concurrent use.
type Next func(i int64) Request

// Fixed always sends r.
func Fixed(r Request) Next { return func(int64) Request { return r } }

// Result is what a loop saw.
type Result struct {
	Sent    int64         // requests handed to the client
	Skipped int64         // open loop: sends skipped at the outstanding cap
	Elapsed time.Duration // from the first send to the last answer
	// OK holds the latency of each 200, Rejected of each 429 or 503.
	OK, Rejected []time.Duration
	// NoRetryAfter counts 429/503 answers without a Retry-After header.
	NoRetryAfter int64
	// Status counts answers by status code.
	Status map[int]int64
	// Canceled counts requests the client itself cancelled (Request.Cancel).
	Canceled int64
	// Errors counts transport errors (no answer at all), FirstError is one.
	Errors     int64
	FirstError string
}

// Throughput is the 200s per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.OK)) / r.Elapsed.Seconds()
}

// Add merges o into r, as if one loop had seen both (elapsed times add).
func (r *Result) Add(o *Result) {
	r.Sent += o.Sent
	r.Skipped += o.Skipped
	r.Elapsed += o.Elapsed
	r.OK = append(r.OK, o.OK...)
	r.Rejected = append(r.Rejected, o.Rejected...)
	r.NoRetryAfter += o.NoRetryAfter
	for s, n := range o.Status {
		if r.Status == nil {
			r.Status = map[int]int64{}
		}
		r.Status[s] += n
	}
	r.Canceled += o.Canceled
	r.Errors += o.Errors
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
}

// Pct returns the p-th percentile (0–100) of d, which it sorts.
func Pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p/100)]
}

// String is a one-line summary.
func (r *Result) String() string {
	return fmt.Sprintf("sent=%d ok=%d (%.0f/s, p50 %v p99 %v) rejected=%d (p50 %v p99 %v, %d without Retry-After) canceled=%d errors=%d skipped=%d status=%v",
		r.Sent, len(r.OK), r.Throughput(), Pct(r.OK, 50), Pct(r.OK, 99), len(r.Rejected), Pct(r.Rejected, 50), Pct(r.Rejected, 99),
		r.NoRetryAfter, r.Canceled, r.Errors, r.Skipped, r.Status)
}

// recorder collects outcomes from many goroutines.
type recorder struct {
	mu sync.Mutex
	r  Result
}

func (rec *recorder) add(status int, d time.Duration, retryAfter bool, canceled bool, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	switch {
	case canceled:
		rec.r.Canceled++
	case err != nil:
		rec.r.Errors++
		if rec.r.FirstError == "" {
			rec.r.FirstError = err.Error()
		}
	default:
		if rec.r.Status == nil {
			rec.r.Status = map[int]int64{}
		}
		rec.r.Status[status]++
		switch status {
		case http.StatusOK:
			rec.r.OK = append(rec.r.OK, d)
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			rec.r.Rejected = append(rec.r.Rejected, d)
			if !retryAfter {
				rec.r.NoRetryAfter++
			}
		}
	}
}

// Client returns an HTTP client for up to conns connections to one host.
// Close its idle connections when done (CloseIdleConnections).
func Client(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true},
		Timeout:   time.Minute,
	}
}

// Send posts one request and records its outcome.
func send(ctx context.Context, c *http.Client, r Request, rec *recorder, buf *bytes.Buffer) {
	if r.Cancel > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Cancel)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		rec.add(0, 0, false, false, err)
		return
	}
	req.Header = r.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		buf.Reset()
		_, err = io.Copy(buf, resp.Body)
		resp.Body.Close()
	}
	d := time.Since(t0)
	if err != nil {
		rec.add(0, d, false, r.Cancel > 0 && ctx.Err() != nil, err)
		return
	}
	rec.add(resp.StatusCode, d, resp.Header.Get("Retry-After") != "", false, nil)
}

// Closed runs c clients in a closed loop for d, or until ctx ends.
func Closed(ctx context.Context, c *http.Client, next Next, clients int, d time.Duration) (*Result, error) {
	if err := checkLoopback(next(0).URL); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var rec recorder
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			var buf bytes.Buffer
			for ctx.Err() == nil {
				i := n.Add(1) - 1
				send(context.WithoutCancel(ctx), c, next(i), &rec, &buf)
			}
		})
	}
	wg.Wait()
	rec.r.Elapsed = time.Since(start)
	rec.r.Sent = n.Load()
	return &rec.r, nil
}

// Open sends rate requests per second for d, each on its own goroutine,
// whatever the answers, with at most maxOutstanding unanswered (sends past
// that are skipped and counted). It returns when every sent request has
// its outcome.
func Open(ctx context.Context, c *http.Client, next Next, rate float64, d time.Duration, maxOutstanding int) (*Result, error) {
	if err := checkLoopback(next(0).URL); err != nil {
		return nil, err
	}
	if rate <= 0 {
		return nil, fmt.Errorf("loadtest: rate %v", rate)
	}
	interval := time.Duration(float64(time.Second) / rate)
	var rec recorder
	sem := make(chan struct{}, maxOutstanding)
	var wg sync.WaitGroup
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	start := time.Now()
	end := start.Add(d)
	var i int64
	for ctx.Err() == nil {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if w := time.Until(due); w > 0 {
			time.Sleep(w) // wakes about every millisecond: the due sends go out together
		}
		select {
		case sem <- struct{}{}:
			r := next(i)
			wg.Go(func() {
				defer func() { <-sem }()
				buf := bufs.Get().(*bytes.Buffer)
				send(context.WithoutCancel(ctx), c, r, &rec, buf)
				bufs.Put(buf)
			})
			rec.mu.Lock()
			rec.r.Sent++
			rec.mu.Unlock()
		default:
			rec.mu.Lock()
			rec.r.Skipped++
			rec.mu.Unlock()
		}
		i++
	}
	wg.Wait()
	rec.r.Elapsed = time.Since(start)
	return &rec.r, nil
}

// checkLoopback refuses any target that is not on this machine's loopback.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("loadtest: %q: want an http URL", target)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("loadtest: %q: only loopback targets are allowed", target)
		}
	}
	return nil
}
