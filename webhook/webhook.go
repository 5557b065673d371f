package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/internal/retry"
	"github.com/servekit/servekit/serving"
)

// Defaults of New.
const (
	DefaultQueue          = 64
	DefaultRetries        = 5
	DefaultBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
)

// Sender delivers alerts to a URL as JSON POSTs: the hand-off to a
// retraining pipeline. Send queues an alert and returns at once (a full
// queue drops it and counts it), so it can be called from a monitor's
// alert function; one goroutine owned by the Sender sends, one alert at a time, retrying
// failures with exponential backoff and jitter. Each attempt has its own
// timeout, and Close cancels the attempt in flight, so nothing waits
// forever. Every attempt of an alert carries the same Idempotency-Key
// header, so a receiver can tell a retry from a new alert. With a key
// (WithSigningKey) every attempt carries an HMAC-SHA256 signature of its
// body and time (SignatureHeader), which the receiver checks with
// Verify. Redirects are not followed: a 3xx fails the delivery,
// since following it would send the alert, and its signature, to a host
// nobody configured. Retries go through the module's one retry policy
// (equal jitter, Retry-After honoured up to the cap). A Sender is safe
// for concurrent use.
type Sender struct {
	url     string
	client  *http.Client
	header  http.Header
	retries int
	base    time.Duration
	max     time.Duration
	timeout time.Duration
	key     []byte // WithSigningKey
	policy  retry.Policy

	queued int // WithQueue, checked by New before the queue is made
	queue  chan outgoing
	mu     sync.RWMutex // guards closed against Notify's send
	closed bool
	cancel context.CancelFunc
	exited chan struct{}
	once   sync.Once

	sent, failed, dropped, retried atomic.Int64
}

// Payload is what a Sender delivers: any value that marshals to JSON and
// names its Idempotency-Key, the same for every attempt of one delivery.
// drift.Alert and quality.Alert are Payloads.
type Payload interface {
	IdempotencyKey() string
}

// outgoing is a queued delivery.
type outgoing struct {
	v   any
	key string
}

// Stats counts a Sender's deliveries: alerts Sent (a 2xx answer),
// Failed (retries exhausted, or refused with a 4xx other than 408, 425 or
// 429), Dropped (queue full, or still queued at Close) and Retries made.
type Stats struct {
	Sent, Failed, Dropped, Retries int64
}

// Option configures New.
type Option interface{ apply(*Sender) }

type optionFunc func(*Sender)

func (f optionFunc) apply(w *Sender) { f(w) }

// WithHTTPClient sends with a copy of c that does not follow redirects
// (default: a client without its own timeout; each attempt has one, see
// WithAttemptTimeout).
func WithHTTPClient(c *http.Client) Option {
	return optionFunc(func(w *Sender) { w.client = c })
}

// WithHeader adds a header to every request, such as an Authorization.
func WithHeader(key, value string) Option {
	return optionFunc(func(w *Sender) { w.header.Add(key, value) })
}

// WithRetries sets how many times a failed delivery is retried (default
// DefaultRetries).
func WithRetries(n int) Option { return optionFunc(func(w *Sender) { w.retries = n }) }

// WithBackoff sets the wait before the first retry and its cap (defaults
// DefaultBackoff, DefaultMaxBackoff). The wait doubles with each retry and
// is jittered between half and all of it, so replicas that failed together
// do not retry together; a Retry-After answer lengthens it, up to the cap.
func WithBackoff(base, max time.Duration) Option {
	return optionFunc(func(w *Sender) { w.base, w.max = base, max })
}

// WithAttemptTimeout bounds each attempt (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) Option {
	return optionFunc(func(w *Sender) { w.timeout = d })
}

// WithQueue sets how many alerts may wait to be sent (default
// DefaultQueue).
func WithQueue(n int) Option {
	return optionFunc(func(w *Sender) { w.queued = n })
}

// New starts a Sender that posts to target (http or https). Invalid
// options are an InvalidArgument error.
func New(target string, opts ...Option) (*Sender, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, serving.Errorf(serving.InvalidArgument, "webhook: URL %q: want an absolute http or https URL", target)
	}
	w := &Sender{
		url: target, header: http.Header{},
		retries: DefaultRetries, base: DefaultBackoff, max: DefaultMaxBackoff,
		timeout: DefaultAttemptTimeout, queued: DefaultQueue,
		exited: make(chan struct{}),
	}
	for _, o := range opts {
		o.apply(w)
	}
	if w.key != nil && len(w.key) == 0 {
		return nil, serving.Errorf(serving.InvalidArgument, "webhook: an empty signing key")
	}
	if w.retries < 0 || w.base <= 0 || w.max < w.base || w.timeout <= 0 || w.queued < 1 {
		return nil, serving.Errorf(serving.InvalidArgument, "webhook: retries %d, backoff %v..%v, timeout %v, queue %d: want retries >= 0, 0 < base <= max, a positive timeout and queue",
			w.retries, w.base, w.max, w.timeout, w.queued)
	}
	w.queue = make(chan outgoing, w.queued)
	w.client = retry.NoRedirects(w.client)
	w.policy = retry.Policy{Retries: w.retries, Base: w.base, Max: w.max,
		OnRetry: func(error, time.Duration) { w.retried.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
	return w, nil
}

// Send queues an alert for delivery; it never blocks. It is the module's
// one alert path: a monitor's alert function hands its alerts here.
//
//	drift.WithAlertFunc(func(a drift.Alert) { hook.Send(a) })
//	quality.WithAlertFunc(func(a quality.Alert) { hook.Send(a) })
func (w *Sender) Send(p Payload) { w.enqueue(p, p.IdempotencyKey()) }

func (w *Sender) enqueue(v any, key string) {
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
func (w *Sender) Stats() Stats {
	return Stats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(), Retries: w.retried.Load()}
}

// Close stops the Sender: the attempt in flight is cancelled and alerts
// still queued are dropped (and counted). Use Shutdown to deliver them
// first. Close is idempotent.
func (w *Sender) Close() error {
	w.stop()
	w.cancel()
	<-w.exited
	return nil
}

// Shutdown stops accepting alerts and waits, until ctx ends, for the queued
// ones to be delivered; then it closes the Sender.
func (w *Sender) Shutdown(ctx context.Context) error {
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
func (w *Sender) stop() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
}

func (w *Sender) run(ctx context.Context) {
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
func (w *Sender) deliver(ctx context.Context, v any, key string) {
	body, err := json.Marshal(v)
	if err != nil {
		w.failed.Add(1) // unreachable: results hold finite numbers only
		return
	}
	err = w.policy.Post(ctx, w.client, retry.Post{URL: w.url, Body: body, Timeout: w.timeout, Header: func(h http.Header) {
		for k, vs := range w.header {
			h[k] = vs
		}
		h.Set("Content-Type", "application/json")
		h.Set("User-Agent", "servekit-webhook")
		h.Set("Idempotency-Key", key)
		if w.key != nil {
			h.Set(SignatureHeader, Sign(w.key, time.Now(), body))
		}
	}})
	if err != nil {
		w.failed.Add(1)
		return
	}
	w.sent.Add(1)
}
