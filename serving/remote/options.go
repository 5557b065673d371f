package remote

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// An Option configures Dial.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	version    string
	client     *http.Client
	threshold  int
	md         *serving.Metadata
	lim        oip.Limits
	maxBytes   int64
	keyHeader  string
	propagator propagation.TextMapPropagator
	header     http.Header
	probe      time.Duration
}

// The defaults, and why.
const (
	// DefaultBinaryThreshold: 1 KiB of raw input. BenchmarkPredict (REST
	// on loopback, medians of 5) has JSON and binary tensors level at
	// 256 B, binary 1.6x faster at 1 KiB, 2.8x at 4 KiB and 8.2x at
	// 64 KiB: below the threshold a JSON body costs no more, stays
	// readable in logs and proxies, and every V2 server reads it; above
	// it Triton's binary tensors save the bytes and the number parsing.
	DefaultBinaryThreshold = 1 << 10
	// DefaultMaxResponseBytes caps an answer's body (REST) or message
	// (gRPC): 64 MiB, what servekit's transports accept in a request.
	DefaultMaxResponseBytes = 64 << 20
	// DefaultRoutingKeyHeader carries Request.Key, the header servekit's
	// transports read it from (x-routing-key in gRPC metadata).
	DefaultRoutingKeyHeader = "X-Routing-Key"
)

func newConfig(opts []Option) config {
	c := config{threshold: DefaultBinaryThreshold, maxBytes: DefaultMaxResponseBytes, keyHeader: DefaultRoutingKeyHeader}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// WithVersion pins the model version every request goes to (the URL's
// /versions/{v}, the message's model_version). Without it the server's
// default version answers, and Response.Version says which one did.
// Request.Version is not used: a Predictor is one remote model, as an
// in-process one is, and a rollout router sets Request.Version to its own
// name for the version.
func WithVersion(v string) Option { return optionFunc(func(c *config) { c.version = v }) }

// WithHTTPClient sets the client requests go through (TLS, proxies,
// authentication transports); Predictors that share one share its
// connections. Without it each Predictor has its own pooled transport,
// which Close releases; a client given here is not closed. A gRPC target
// needs a client that speaks HTTP/2.
func WithHTTPClient(c *http.Client) Option { return optionFunc(func(cf *config) { cf.client = c }) }

// WithBinaryThreshold sets the raw size of a REST request's inputs from
// which they travel as Triton's binary tensors (default
// DefaultBinaryThreshold). A negative n sends JSON only and asks for JSON
// answers: for V2 servers without the binary_tensor_data extension. Inputs
// JSON cannot carry exactly (NaN and infinities, BYTES that are not UTF-8)
// travel binary whatever their size unless n is negative; with n negative
// non-finite floats are written as "NaN", "Infinity" and "-Infinity" (the
// proto3 JSON mapping KServe reads) and BYTES that are not UTF-8 are
// refused. gRPC always sends raw contents.
func WithBinaryThreshold(n int) Option { return optionFunc(func(c *config) { c.threshold = n }) }

// WithMetadata gives the model's metadata instead of asking the server for
// it at Dial: for servers without the model metadata endpoint, or to state
// the schema a caller relies on.
func WithMetadata(md serving.Metadata) Option {
	return optionFunc(func(c *config) { c.md = &md })
}

// WithLimits bounds the answers decoded (counts of outputs and parameters,
// elements per tensor); a zero field is oip.DefaultLimits'.
func WithLimits(l oip.Limits) Option { return optionFunc(func(c *config) { c.lim = l }) }

// WithMaxResponseBytes caps the size of an answer (default
// DefaultMaxResponseBytes); a larger one fails with ResourceExhausted
// before more than n bytes are read.
func WithMaxResponseBytes(n int64) Option { return optionFunc(func(c *config) { c.maxBytes = n }) }

// WithRoutingKeyHeader names the header (gRPC: metadata, lowercased) that
// carries Request.Key, for sticky rollouts on the server (default
// DefaultRoutingKeyHeader; "" sends no key).
func WithRoutingKeyHeader(name string) Option {
	return optionFunc(func(c *config) { c.keyHeader = name })
}

// WithPropagator sets how the trace context of a request's ctx is written
// into its headers (default: otel.GetTextMapPropagator() at each call,
// W3C traceparent once OpenTelemetry is set up).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

// WithHeader adds a header (gRPC: metadata) to every request, such as an
// Authorization token.
func WithHeader(key, value string) Option {
	return optionFunc(func(c *config) {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Add(key, value)
	})
}

// WithReadinessProbe asks the server every d whether the model is ready
// (ModelReady, within d), so that Ready, which a rollout router asks before
// it routes to a version, says whether the remote model can answer: a
// router then sends a down server's share to its other ready versions
// instead of failing it. A call that ends Unavailable (the server
// unreachable, or answering 503) makes the Predictor not ready at once,
// until a probe finds the model ready again. Without a probe Ready reports
// only whether the Predictor is open. The probe's goroutine ends at Close.
func WithReadinessProbe(d time.Duration) Option {
	return optionFunc(func(c *config) { c.probe = d })
}
