package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of NewWebhook.
const (
	DefaultWebhookQueue   = 64
	DefaultWebhookRetries = 5
	DefaultBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
)

// Webhook delivers alerts to a URL as JSON POSTs: the hand-off to a
// retraining pipeline. Notify queues an alert and returns at once (a full
// queue drops it and counts it), so it can be a monitor's alert function;
// one goroutine owned by the Webhook sends, one alert at a time, retrying
// failures with exponential backoff and jitter. Each attempt has its own
// timeout, and Close cancels the attempt in flight, so nothing waits
// forever. Every attempt of an alert carries the same Idempotency-Key
// header, so a receiver can tell a retry from a new alert. A Webhook is
// safe for concurrent use.
type Webhook struct {
	url     string
	client  *http.Client
	header  http.Header
	retries int
	base    time.Duration
	max     time.Duration
	timeout time.Duration

	queue  chan outgoing
	mu     sync.RWMutex // guards closed against Notify's send
	closed bool
	cancel context.CancelFunc
	exited chan struct{}
	once   sync.Once

	sent, failed, dropped, retried atomic.Int64
}

// Payload is what a Webhook delivers besides drift's own alerts (Send):
// any value that marshals to JSON and names its Idempotency-Key, the same
// for every attempt of one delivery. Package quality's Alert is one.
type Payload interface {
	IdempotencyKey() string
}

// outgoing is a queued delivery.
type outgoing struct {
	v   any
	key string
}

// WebhookStats counts a Webhook's deliveries: alerts Sent (a 2xx answer),
// Failed (retries exhausted, or refused with a 4xx other than 408, 425 or
// 429), Dropped (queue full, or still queued at Close) and Retries made.
type WebhookStats struct {
	Sent, Failed, Dropped, Retries int64
}

// WebhookOption configures NewWebhook.
type WebhookOption interface{ applyWebhook(*Webhook) }

type webhookOptionFunc func(*Webhook)

func (f webhookOptionFunc) applyWebhook(w *Webhook) { f(w) }

// WithHTTPClient sends with c (default: a client without its own timeout;
// each attempt has one, see WithAttemptTimeout).
func WithHTTPClient(c *http.Client) WebhookOption {
	return webhookOptionFunc(func(w *Webhook) { w.client = c })
}

// WithHeader adds a header to every request, such as an Authorization.
func WithHeader(key, value string) WebhookOption {
	return webhookOptionFunc(func(w *Webhook) { w.header.Add(key, value) })
}

// WithRetries sets how many times a failed delivery is retried (default
// DefaultWebhookRetries).
func WithRetries(n int) WebhookOption { return webhookOptionFunc(func(w *Webhook) { w.retries = n }) }

// WithBackoff sets the wait before the first retry and its cap (defaults
// DefaultBackoff, DefaultMaxBackoff). The wait doubles with each retry and
// is jittered between half and all of it, so replicas that failed together
// do not retry together; a Retry-After answer lengthens it, up to the cap.
func WithBackoff(base, max time.Duration) WebhookOption {
	return webhookOptionFunc(func(w *Webhook) { w.base, w.max = base, max })
}

// WithAttemptTimeout bounds each attempt (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) WebhookOption {
	return webhookOptionFunc(func(w *Webhook) { w.timeout = d })
}

// WithWebhookQueue sets how many alerts may wait to be sent (default
// DefaultWebhookQueue).
func WithWebhookQueue(n int) WebhookOption {
	return webhookOptionFunc(func(w *Webhook) { w.queue = make(chan outgoing, n) })
}

// NewWebhook starts a Webhook that posts to target (http or https).
func NewWebhook(target string, opts ...WebhookOption) (*Webhook, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("drift: webhook URL %q: want an absolute http or https URL", target)
	}
	w := &Webhook{
		url: target, client: &http.Client{}, header: http.Header{},
		retries: DefaultWebhookRetries, base: DefaultBackoff, max: DefaultMaxBackoff,
		timeout: DefaultAttemptTimeout, queue: make(chan outgoing, DefaultWebhookQueue),
		exited: make(chan struct{}),
	}
	for _, o := range opts {
		o.applyWebhook(w)
	}
	if w.retries < 0 || w.base <= 0 || w.max < w.base || w.timeout <= 0 || cap(w.queue) < 1 {
		return nil, fmt.Errorf("drift: webhook: retries %d, backoff %v..%v, timeout %v, queue %d: want retries >= 0, 0 < base <= max, a positive timeout and queue",
			w.retries, w.base, w.max, w.timeout, cap(w.queue))
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
	return w, nil
}

// Notify queues an alert for delivery; it never blocks. Pass it to
// WithAlertFunc.
func (w *Webhook) Notify(a Alert) { w.enqueue(a, a.IdempotencyKey()) }

// Send queues another component's alert for delivery the same way, with
// the same retries, timeouts and counters: the one alert path of the
// module. It never blocks. With package quality:
//
//	quality.WithAlertFunc(func(a quality.Alert) { hook.Send(a) })
func (w *Webhook) Send(p Payload) { w.enqueue(p, p.IdempotencyKey()) }

func (w *Webhook) enqueue(v any, key string) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- outgoing{v, key}:
	default:
		w.dropped.Add(1)
	}
}

// Stats returns the delivery counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retried.Load()}
}

// Close stops the Webhook: the attempt in flight is cancelled and alerts
// still queued are dropped (and counted). Use Shutdown to deliver them
// first. Close is idempotent.
func (w *Webhook) Close() error {
	w.stop()
	w.cancel()
	<-w.exited
	return nil
}

// Shutdown stops accepting alerts and waits, until ctx ends, for the queued
// ones to be delivered; then it closes the Webhook.
func (w *Webhook) Shutdown(ctx context.Context) error {
	w.stop()
	select {
	case <-w.exited:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.exited
		return ctx.Err()
	}
}

// stop refuses new alerts and lets the sender end once the queue is empty.
func (w *Webhook) stop() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
}

func (w *Webhook) run(ctx context.Context) {
	defer close(w.exited)
	for o := range w.queue {
		if ctx.Err() != nil {
			w.dropped.Add(1)
			continue
		}
		w.deliver(ctx, o.v, o.key)
	}
}

// deliver sends one alert, retrying until it is taken, refused, out of
// retries or cancelled.
func (w *Webhook) deliver(ctx context.Context, v any, key string) {
	body, err := json.Marshal(v)
	if err != nil {
		w.failed.Add(1) // unreachable: results hold finite numbers only
		return
	}
	for attempt := 0; ; attempt++ {
		retry, after := w.attempt(ctx, body, key)
		if !retry {
			return
		}
		if attempt >= w.retries || ctx.Err() != nil {
			w.failed.Add(1)
			return
		}
		w.retried.Add(1)
		d := min(w.max, w.base<<min(attempt, 30))
		d = d/2 + rand.N(d/2+1)
		d = max(d, min(after, w.max))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			w.failed.Add(1)
			return
		}
	}
}

// attempt posts once; it reports whether to retry and the server's
// Retry-After hint.
func (w *Webhook) attempt(ctx context.Context, body []byte, key string) (retry bool, after time.Duration) {
	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		w.failed.Add(1)
		return false, 0
	}
	for k, vs := range w.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "servekit-drift")
	req.Header.Set("Idempotency-Key", key)
	resp, err := w.client.Do(req)
	if err != nil {
		return true, 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		w.sent.Add(1)
		return false, 0
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests || c >= 500:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return true, time.Duration(secs) * time.Second
	}
	w.failed.Add(1)
	return false, 0
}
