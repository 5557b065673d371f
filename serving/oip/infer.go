package oip

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/servekit/servekit/serving"
)

// Call is what a transport read from an infer request besides the request
// itself: the values its headers or metadata carry, and its own limits.
type Call struct {
	// Key is the routing key the transport's header gave (X-Routing-Key);
	// a "routing_key" request parameter wins over it.
	Key string
	// Timeout is the transport's own deadline for the call (a Timeout
	// header); MaxTimeout caps every call and gives one to calls that ask
	// for none. Zero means none. The call's budget is the earliest of
	// these and the request's "timeout" parameter (µs, Triton's); a
	// deadline already in ctx (gRPC's grpc-timeout) stands as well.
	Timeout, MaxTimeout time.Duration
	// Start is when the request arrived: the statistics time calls from it
	// (zero: from when Infer starts).
	Start time.Time
	// Timing, when not nil, is the record the chain's layers fill in for
	// this call (a transport may keep one in its per-request state to save
	// an allocation); nil makes Infer allocate one.
	Timing *serving.Timing
	// Classify lists the outputs asked for with Triton's classification
	// extension (an output's "classification": k parameter), answered with
	// their top k classes (serving.ClassifyOutputs).
	Classify []serving.Classification
}

// Result is what a transport writes back.
type Result struct {
	// Response is the chain's answer, possibly shared with other callers
	// (a response cache): read-only.
	Response *serving.Response
	// Outputs are the outputs to write, those asked for in the order asked
	// (all when none were named), classified where the call asked.
	Outputs []serving.Tensor
	// Version is the version that answered: the Response's, else the one
	// resolved.
	Version string
}

// Infer runs the protocol's infer steps for req against t, which Resolve
// found: it sets req's model, version (the resolved one, so a cache keys
// both addressings of one version alike) and routing key, bounds ctx by
// the call's deadline, refuses a target that is not ready (Unavailable),
// calls the chain (a panic becomes an Internal error, logged with its
// stack; no answer and no error is Internal too), selects the outputs
// asked for (NotFound for one the answer lacks), answers those asked for
// with classification by their top classes (with the labels of the
// target version's metadata; the chain's answer, which a cache may share,
// is not modified) and counts the call in the statistics. Transports decode before it and encode after it; every
// transport's infer path is these steps.
func (s *Server) Infer(ctx context.Context, t Target, req *serving.Request, c Call) (Result, error) {
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	req.Model, req.Version = t.Model, t.Version
	if k, ok := req.Params[serving.ParamRoutingKey].(string); ok {
		req.Key = k
	} else {
		req.Key = c.Key
	}
	tm := c.Timing
	if tm == nil {
		tm = new(serving.Timing)
	}
	ctx = serving.WithTiming(ctx, tm)
	if d := budget(req.Params, c); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	res := Result{Version: t.Version}
	resp, err := s.predict(ctx, t, req)
	if err == nil {
		if resp.Version != "" {
			res.Version = resp.Version
		}
		res.Response = resp
		res.Outputs, err = serving.SelectOutputs(req, resp)
		if err == nil && len(c.Classify) > 0 {
			res.Outputs, err = serving.ClassifyOutputs(t.Metadata(), res.Outputs, c.Classify)
		}
	}
	s.stats.record(t.Model, res.Version, req, tm, c.Start, err)
	return res, err
}

// budget is the earliest of the request's timeout parameter, the
// transport's deadline and its cap, or 0.
func budget(params serving.Params, c Call) time.Duration {
	d := c.MaxTimeout
	if c.Timeout > 0 && (d == 0 || c.Timeout < d) {
		d = c.Timeout
	}
	if t, ok := params.Timeout(); ok && (d == 0 || t < d) {
		d = t
	}
	return d
}

// predict checks readiness, then asks the chain. A panic anywhere in the
// chain becomes an Internal error and is logged with its stack: the
// client is told only that the model failed, as the panic value may hold
// internals.
func (s *Server) predict(ctx context.Context, t Target, req *serving.Request) (resp *serving.Response, err error) {
	if !serving.IsReady(t.call) {
		return nil, serving.Errorf(serving.Unavailable, "oip: model %q is not ready", req.Model)
	}
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler { // net/http's own way out: keep it
				panic(r)
			}
			s.cfg.logger().Error("oip: predictor panicked", "model", req.Model, "version", req.Version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, serving.Errorf(serving.Internal, "oip: model %q failed with an internal error", req.Model)
		}
	}()
	resp, err = t.call.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "oip: model %q returned no response", req.Model)
	}
	return resp, err
}
