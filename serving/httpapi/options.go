package httpapi

import (
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// Option configures a Handler (see New).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// NonFinite says how NaN and ±Inf are written in JSON: the codec's
// policy, oipjson.NonFinite.
type NonFinite = oipjson.NonFinite

// The NaN policies (see oipjson): strings by default, Triton's bare tokens,
// or null.
const (
	NonFiniteString = oipjson.NonFiniteString
	NonFiniteBare   = oipjson.NonFiniteBare
	NonFiniteNull   = oipjson.NonFiniteNull
)

type route struct {
	method, path string
	kind         routeKind
	model        string
}

type routeKind uint8

const (
	routeLive routeKind = iota
	routeReady
	routePredictV1
	routeInferV2
)

type config struct {
	server        *oip.Server
	prefix        string
	fallback      http.Handler
	maxBody       int64
	lim           oip.Limits
	timeoutHeader string
	keyHeader     string
	versionHeader string
	maxTimeout    time.Duration
	nonFinite     NonFinite
	serverName    string
	serverVersion string
	v1            bool
	extra         []route
	retryAfter    time.Duration
	log           *slog.Logger
}

func defaultConfig() config {
	return config{
		maxBody:       64 << 20,
		lim:           oip.DefaultLimits,
		timeoutHeader: "Timeout",
		keyHeader:     "X-Routing-Key",
		versionHeader: "X-Model-Version",
		v1:            true,
		retryAfter:    time.Second,
	}
}

// WithServer serves the models of s, which other transports may serve
// too (grpcapi.New(s)): a model registered once answers over every
// protocol. Without it the Handler has a Server of its own (Server
// returns it).
func WithServer(s *oip.Server) Option { return optionFunc(func(c *config) { c.server = s }) }

// WithPrefix serves every route under prefix ("/ml" gives "/ml/v2/..."), for
// mounting in an existing mux without http.StripPrefix. Routes added with
// WithLiveRoute, WithReadyRoute, WithPredictRoute, SageMaker and Vertex are
// not prefixed: those contracts fix their paths.
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.prefix = strings.TrimSuffix(prefix, "/") })
}

// WithFallback sends every request that matches no inference route to h, so a
// service adds inference to what it already serves. Without it, such requests
// get a 404 with a JSON error.
func WithFallback(h http.Handler) Option {
	return optionFunc(func(c *config) { c.fallback = h })
}

// WithMaxBodyBytes bounds request bodies (default 64 MiB); larger ones get 413.
func WithMaxBodyBytes(n int64) Option { return optionFunc(func(c *config) { c.maxBody = n }) }

// WithMaxElements bounds the elements of one input tensor (default 1<<24);
// larger shapes get 400 before anything is allocated for them.
func WithMaxElements(n int64) Option { return optionFunc(func(c *config) { c.lim.Elements = n }) }

// WithMaxInputs bounds the input tensors of one request (default 1024); a
// request with more gets 400 as soon as the decoder meets the one too many.
func WithMaxInputs(n int) Option { return optionFunc(func(c *config) { c.lim.Inputs = n }) }

// WithMaxOutputs bounds the outputs one request may ask for (default 1024);
// more get 400.
func WithMaxOutputs(n int) Option { return optionFunc(func(c *config) { c.lim.Outputs = n }) }

// WithMaxParameters bounds the values of a request's "parameters", nested
// values included (default 256); more get 400.
func WithMaxParameters(n int) Option { return optionFunc(func(c *config) { c.lim.Parameters = n }) }

// WithMaxInstances bounds the rows of a V1 {"instances": [...]} request
// (default 1<<20); more get 400.
func WithMaxInstances(n int) Option { return optionFunc(func(c *config) { c.lim.Instances = n }) }

// WithTimeoutHeader names the request header read as a deadline, a Go
// duration such as "250ms" (default "Timeout"; "" turns it off). A
// Grpc-Timeout header ("250m" = 250 ms, gRPC's format) is always read too.
func WithTimeoutHeader(name string) Option {
	return optionFunc(func(c *config) { c.timeoutHeader = http.CanonicalHeaderKey(name) })
}

// WithRoutingKeyHeader names the request header whose value becomes
// serving.Request.Key, the key sticky rollouts route on (a user or session
// id): the same key reaches the same version (default "X-Routing-Key"; ""
// turns it off). A "routing_key" request parameter (serving.ParamRoutingKey)
// does the same and wins over the header.
func WithRoutingKeyHeader(name string) Option {
	return optionFunc(func(c *config) { c.keyHeader = http.CanonicalHeaderKey(name) })
}

// WithVersionHeader names the request header that pins a version when the
// URL names none, so a tester reaches a canary through the model's plain
// route (default "X-Model-Version"; "" turns it off). The version must exist:
// an unknown one is 404, as it is in the URL.
func WithVersionHeader(name string) Option {
	return optionFunc(func(c *config) { c.versionHeader = http.CanonicalHeaderKey(name) })
}

// WithMaxTimeout caps every request's time budget, and gives one to requests
// that ask for none. Zero (the default) means no cap.
func WithMaxTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.maxTimeout = d }) }

// WithNonFinite picks how NaN and ±Inf outputs are written (default
// NonFiniteString). Inputs accept both the strings and, nowhere else, nothing:
// bare NaN tokens are not JSON and are rejected with 400.
func WithNonFinite(m NonFinite) Option { return optionFunc(func(c *config) { c.nonFinite = m }) }

// WithServerInfo sets the name and version GET /v2 reports, over the
// Server's own (oip.WithServerInfo).
func WithServerInfo(name, version string) Option {
	return optionFunc(func(c *config) { c.serverName, c.serverVersion = name, version })
}

// WithoutV1 turns off the V1 routes (/v1/models/{name}:predict and
// GET /v1/models/{name}), which are on by default.
func WithoutV1() Option { return optionFunc(func(c *config) { c.v1 = false }) }

// WithRetryAfter sets the Retry-After sent with 503 when the error carries no
// hint of its own (default 1s).
func WithRetryAfter(d time.Duration) Option { return optionFunc(func(c *config) { c.retryAfter = d }) }

// WithLogger sets where the handler logs what no response can tell: a
// Predictor's panic, with its stack (default: slog.Default() at the time
// of logging). Request bodies and tensors are never logged. With
// WithServer, the Server's logger (oip.WithLogger) logs the panics.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.log = l })
}

// WithLiveRoute answers GET path with 200 while the process serves (Azure ML
// liveness, Vertex health).
func WithLiveRoute(path string) Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, route{"GET", path, routeLive, ""}) })
}

// WithReadyRoute answers GET path with 200 when every model is ready, else 503.
func WithReadyRoute(path string) Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, route{"GET", path, routeReady, ""}) })
}

// WithPredictRoute serves the V1 body ({"instances": ...} or {"inputs": ...})
// for model at POST path (Azure ML scoring URI, Vertex predict route).
func WithPredictRoute(path, model string) Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, route{"POST", path, routePredictV1, model}) })
}

// WithInferRoute serves the V2 infer body for model at POST path.
func WithInferRoute(path, model string) Option {
	return optionFunc(func(c *config) { c.extra = append(c.extra, route{"POST", path, routeInferV2, model}) })
}

// SageMaker adds the SageMaker container contract for model: GET /ping (200
// when ready) and POST /invocations (a V1 body, or a V2 body when it has
// "inputs" as a list of named tensors). The server must listen on :8080.
func SageMaker(model string) Option {
	return optionFunc(func(c *config) {
		c.extra = append(c.extra, route{"GET", "/ping", routeReady, ""}, route{"POST", "/invocations", routePredictV1, model})
	})
}

// Vertex adds the Vertex AI custom-container contract for model: health at
// $AIP_HEALTH_ROUTE (default /health) and V1 predict at $AIP_PREDICT_ROUTE
// (default /predict). The port is $AIP_HTTP_PORT (see VertexPort).
func Vertex(model string) Option {
	health := envOr("AIP_HEALTH_ROUTE", "/health")
	predict := envOr("AIP_PREDICT_ROUTE", "/predict")
	return optionFunc(func(c *config) {
		c.extra = append(c.extra, route{"GET", health, routeReady, ""}, route{"POST", predict, routePredictV1, model})
	})
}

// VertexPort returns $AIP_HTTP_PORT, or def when unset.
func VertexPort(def string) string { return envOr("AIP_HTTP_PORT", def) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// ModelOption configures one registered model version (see Handler.Handle).
type ModelOption = oip.ModelOption

// Version registers the Predictor as this version of the model, reachable at
// /v2/models/{name}/versions/{v}.
func Version(v string) ModelOption { return oip.Version(v) }

// Default makes the Predictor answer requests that name no version. The first
// Predictor registered for a name is its default until another says Default;
// a rollout router registered with Default routes among versions itself.
func Default() ModelOption { return oip.Default() }
