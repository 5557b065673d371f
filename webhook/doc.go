// Package webhook delivers the monitors' alerts to an HTTP endpoint: the
// hand-off from drift and quality monitoring to a retraining pipeline or
// a pager.
//
// Reach for New and hand its Send to the monitors' alert functions:
//
//	hook, err := webhook.New("http://retrain.internal/hooks/drift",
//		webhook.WithSigningKey([]byte(os.Getenv("HOOK_KEY"))))
//	...
//	defer hook.Shutdown(ctx) // delivers what is queued, for a while
//	mon, err := drift.NewMonitor(drift.WithAlertFunc(func(a drift.Alert) { hook.Send(a) }))
//
// Send never blocks: it queues the alert (a full queue drops it and counts
// it) and one goroutine owned by the Sender POSTs each as JSON, retrying
// failures through the module's one retry policy (internal/retry:
// exponential backoff with equal jitter, Retry-After honoured up to the
// cap, a timeout per attempt). Every attempt of one alert carries the same
// Idempotency-Key, which the alert names itself (Payload), so a receiver
// can tell a retry from a new alert. A redirect is never followed: it
// would send the alert, and its signature, to a host nobody configured.
// With WithSigningKey every attempt is signed (SignatureHeader,
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>", Stripe's format),
// which the receiver checks with Verify: the body is authentic, and a
// delivery replayed past the tolerance (five minutes) is refused.
//
// Why a package of its own: it was drift's, and package quality's alerts
// went through it too, so a quality user imported drift to send them.
// Delivery is not statistics; drift and quality know nothing of it, and
// it knows neither: anything with an IdempotencyKey is a Payload.
//
// A Sender is safe for concurrent use. Close cancels the attempt in flight
// and drops what is queued; Shutdown delivers the queue first, until its
// context ends.
package webhook
