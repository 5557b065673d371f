package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/internal/retry"
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
// header, so a receiver can tell a retry from a new alert. With a key
// (WithSigningKey) every attempt carries an HMAC-SHA256 signature of its
// body and time (SignatureHeader), which the receiver checks with
// VerifySignature. Redirects are not followed: a 3xx fails the delivery,
// since following it would send the alert, and its signature, to a host
// nobody configured. Retries go through the module's one retry policy
// (equal jitter, Retry-After honoured up to the cap). A Webhook is safe
// for concurrent use.
type Webhook struct {
	url     string
	client  *http.Client
	header  http.Header
	retries int
	base    time.Duration
	max     time.Duration
	timeout time.Duration
	key     []byte // WithSigningKey
	policy  retry.Policy

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

// WithHTTPClient sends with a copy of c that does not follow redirects
// (default: a client without its own timeout; each attempt has one, see
// WithAttemptTimeout).
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
		url: target, header: http.Header{},
		retries: DefaultWebhookRetries, base: DefaultBackoff, max: DefaultMaxBackoff,
		timeout: DefaultAttemptTimeout, queue: make(chan outgoing, DefaultWebhookQueue),
		exited: make(chan struct{}),
	}
	for _, o := range opts {
		o.applyWebhook(w)
	}
	if w.key != nil && len(w.key) == 0 {
		return nil, fmt.Errorf("drift: webhook: an empty signing key")
	}
	if w.retries < 0 || w.base <= 0 || w.max < w.base || w.timeout <= 0 || cap(w.queue) < 1 {
		return nil, fmt.Errorf("drift: webhook: retries %d, backoff %v..%v, timeout %v, queue %d: want retries >= 0, 0 < base <= max, a positive timeout and queue",
			w.retries, w.base, w.max, w.timeout, cap(w.queue))
	}
	w.client = retry.NoRedirects(w.client)
	w.policy = retry.Policy{Retries: w.retries, Base: w.base, Max: w.max,
		OnRetry: func(error, time.Duration) { w.retried.Add(1) }}
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
	err = w.policy.Post(ctx, w.client, retry.Post{URL: w.url, Body: body, Timeout: w.timeout, Header: func(h http.Header) {
		for k, vs := range w.header {
			h[k] = vs
		}
		h.Set("Content-Type", "application/json")
		h.Set("User-Agent", "servekit-drift")
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
