package oip

import (
	"log/slog"
	"net/http"
)

// Option configures a Server (see NewServer).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name, version string
	log           *slog.Logger
	admin         func(*http.Request) (string, error) // nil: repository control off
}

func defaultConfig() config {
	return config{name: "servekit", version: "0.1.0"}
}

// WithServerInfo sets the name and version the server metadata reports
// (default "servekit", "0.1.0").
func WithServerInfo(name, version string) Option {
	return optionFunc(func(c *config) { c.name, c.version = name, version })
}

// WithLogger sets where the Server logs what no answer can tell: a
// Predictor's panic with its stack, and who loaded or unloaded a model
// (default: slog.Default() at the time of logging).
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithRepositoryControl turns on the model repository extension (Triton's
// repository index, load and unload) behind auth, which sees each admin
// request whole and returns who asks, or an error: one whose code is
// serving.Unauthenticated is answered 401 (gRPC Unauthenticated), any
// other 403 (PermissionDenied). admin.Authorizer has this shape, so the
// admin API's authoriser guards it too:
//
//	oip.WithRepositoryControl(admin.BearerToken(os.Getenv("SERVEKIT_ADMIN_TOKEN")))
//
// Off by default: loading and unloading models changes what every client
// is answered with, so it is an admin capability, never a default. A nil
// auth leaves it off.
func WithRepositoryControl(auth func(r *http.Request) (who string, err error)) Option {
	return optionFunc(func(c *config) { c.admin = auth })
}

func (c *config) logger() *slog.Logger {
	if c.log != nil {
		return c.log
	}
	return slog.Default()
}

// ModelOption configures one registered model version (see Server.Handle).
type ModelOption interface{ applyModel(*modelConfig) }

type modelOptionFunc func(*modelConfig)

func (f modelOptionFunc) applyModel(c *modelConfig) { f(c) }

type modelConfig struct {
	version   string
	isDefault bool
}

// Version registers the Predictor as this version of the model, reachable
// as /v2/models/{name}/versions/{v} and by model_version over gRPC.
func Version(v string) ModelOption { return modelOptionFunc(func(c *modelConfig) { c.version = v }) }

// Default makes the Predictor answer requests that name no version. The
// first Predictor registered for a name is its default until another says
// Default; a rollout router registered with Default routes among versions
// itself.
func Default() ModelOption { return modelOptionFunc(func(c *modelConfig) { c.isDefault = true }) }

// Limits are the counts a request may reach. Each costs decoder state
// that its few bytes alone would not bound (a 3-byte "{}" input costs a
// few hundred bytes), so each is capped; the defaults are far beyond what
// any model served in one piece needs (serving's package doc, "Cost").
// Every transport and codec reads them; a zero field means its default.
type Limits struct {
	Elements   int64 // elements of one input tensor, from its shape
	Inputs     int   // input tensors of one request
	Outputs    int   // outputs one request may ask for
	Parameters int   // parameter values of one request, nested ones and those of its tensors included
	Instances  int   // rows of a V1 {"instances": [...]} request
}

// DefaultLimits are the limits of a transport given none.
var DefaultLimits = Limits{Elements: 1 << 24, Inputs: 1024, Outputs: 1024, Parameters: 256, Instances: 1 << 20}
