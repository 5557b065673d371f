package grpcapi

import (
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/servekit/servekit/serving/oip"
)

// Option configures a Handler (see New).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// OutputContents says how ModelInfer answers carry output elements.
type OutputContents uint8

const (
	// RawOutputs puts every output in raw_output_contents, as Triton does:
	// no per-element encoding, and the only form FP16 and BF16 have. The
	// default.
	RawOutputs OutputContents = iota
	// TypedOutputs puts outputs in each tensor's typed contents, which
	// clients read without knowing the raw layout. An answer with an FP16
	// or BF16 output is raw all the same: the protocol gives those types no
	// typed field, and one answer cannot mix the two forms.
	TypedOutputs
	// OutputsAsRequested answers raw when the request sent its inputs raw
	// and typed otherwise, as KServe's Python server does.
	OutputsAsRequested
)

type config struct {
	maxBytes      int
	lim           oip.Limits
	maxTimeout    time.Duration
	retryAfter    time.Duration
	keyHeader     string
	versionHeader string
	serverName    string
	serverVersion string
	outputs       OutputContents
	fallback      http.Handler
	connect       []connect.HandlerOption
	extra         []any // grpcserver's options (rpctable.Option)
}

func defaultConfig() config {
	return config{
		maxBytes:      4 << 20,
		lim:           oip.DefaultLimits,
		retryAfter:    time.Second,
		keyHeader:     "X-Routing-Key",
		versionHeader: "X-Model-Version",
	}
}

// WithMaxMessageBytes bounds a request message (default 4 MiB, grpc-go's
// default); a larger one is ResourceExhausted, as gRPC servers answer it,
// before it is read. A compressed message is bounded as it inflates: the
// limit applies to the message, not to what traveled.
func WithMaxMessageBytes(n int) Option { return optionFunc(func(c *config) { c.maxBytes = n }) }

// WithMaxElements bounds the elements of one input tensor (default 1<<24,
// as httpapi's); larger shapes are InvalidArgument before anything is
// allocated for them.
func WithMaxElements(n int64) Option { return optionFunc(func(c *config) { c.lim.Elements = n }) }

// WithMaxInputs bounds the input tensors of one request (default 1024, as
// httpapi's); more are InvalidArgument, found before anything is decoded.
func WithMaxInputs(n int) Option { return optionFunc(func(c *config) { c.lim.Inputs = n }) }

// WithMaxOutputs bounds the outputs one request may ask for (default 1024).
func WithMaxOutputs(n int) Option { return optionFunc(func(c *config) { c.lim.Outputs = n }) }

// WithMaxParameters bounds the parameters of one request, those of its
// tensors included (default 256).
func WithMaxParameters(n int) Option { return optionFunc(func(c *config) { c.lim.Parameters = n }) }

// WithMaxTimeout caps every request's time budget and gives one to requests
// that ask for none. Zero (the default) means no cap. The budget is the
// earliest of the gRPC deadline (grpc-timeout), the "timeout" parameter
// (µs, Triton's) and this cap.
func WithMaxTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.maxTimeout = d }) }

// WithRetryAfter sets the retry hint sent with ResourceExhausted and
// Unavailable errors that carry none of their own (default 1s).
func WithRetryAfter(d time.Duration) Option { return optionFunc(func(c *config) { c.retryAfter = d }) }

// WithRoutingKeyHeader names the request metadata whose value becomes
// serving.Request.Key, the key sticky rollouts route on (default
// "x-routing-key"; "" turns it off). A "routing_key" request parameter does
// the same and wins, as in httpapi.
func WithRoutingKeyHeader(name string) Option {
	return optionFunc(func(c *config) { c.keyHeader = http.CanonicalHeaderKey(name) })
}

// WithVersionHeader names the request metadata that pins a version when
// model_version is empty (default "x-model-version"; "" turns it off), as
// httpapi's header of the same name does.
func WithVersionHeader(name string) Option {
	return optionFunc(func(c *config) { c.versionHeader = http.CanonicalHeaderKey(name) })
}

// WithServerInfo sets the name and version ServerMetadata reports, over
// the Server's own (oip.WithServerInfo).
func WithServerInfo(name, version string) Option {
	return optionFunc(func(c *config) { c.serverName, c.serverVersion = name, version })
}

// WithOutputContents picks how outputs travel (default RawOutputs).
func WithOutputContents(m OutputContents) Option {
	return optionFunc(func(c *config) { c.outputs = m })
}

// WithFallback sends every request outside the service's path to h, so one
// handler serves gRPC and the REST API on one listener:
//
//	rest := httpapi.New()
//	srv.Handler = grpcapi.New(rest, grpcapi.WithFallback(rest))
//
// Without it, such requests get 404.
func WithFallback(h http.Handler) Option { return optionFunc(func(c *config) { c.fallback = h }) }

// WithHandlerOptions passes options to the Connect handler: interceptors
// (authentication, otelconnect), compression, codecs. Limits set here win
// over WithMaxMessageBytes; a codec named "proto" or "json", or a
// compression named "gzip", replaces the handler's own, whose bounds on
// what a request may cost then no longer hold.
func WithHandlerOptions(opts ...connect.HandlerOption) Option {
	return optionFunc(func(c *config) { c.connect = append(c.connect, opts...) })
}
