package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// Loader loads and unloads model versions: the admin API's load and unload
// need it, and only a model repository can do them.
// *repository.Repository implements it.
type Loader interface {
	Load(ctx context.Context, model, version string) error
	Unload(ctx context.Context, model, version string) error
}

// Registry is where a Handler finds its routers, by model name, at each
// request: *repository.Repository implements it, and Routers is a fixed
// one.
type Registry interface {
	Models() []string
	Router(model string) (*rollout.Router, bool)
}

// Routers is a fixed Registry.
type Routers []*rollout.Router

// Models lists the routers' models.
func (rs Routers) Models() []string {
	m := make([]string, len(rs))
	for i, r := range rs {
		m[i] = r.Model()
	}
	return m
}

// Router returns the router of model.
func (rs Routers) Router(model string) (*rollout.Router, bool) {
	for _, r := range rs {
		if r.Model() == model {
			return r, true
		}
	}
	return nil, false
}

// Authorizer decides whether an admin request may proceed, seeing the
// whole *http.Request (headers, client certificate, method: a hook may
// allow reads and refuse writes). It returns who is asking, for the change
// log, or an error: one wrapping ErrUnauthenticated is answered 401, any
// other 403. It must not log secrets: the Handler logs who, never headers.
type Authorizer func(r *http.Request) (who string, err error)

// ErrUnauthenticated is wrapped by an Authorizer's error when the request
// carries no valid credentials (401 rather than 403). Its code is
// serving.Unauthenticated, so the transports, which also guard model
// repository control with an Authorizer, tell the two apart without
// importing this package.
var ErrUnauthenticated = serving.Errorf(serving.Unauthenticated, "admin: unauthenticated")

// BearerToken is an Authorizer that admits requests with the header
// "Authorization: Bearer <token>", compared in constant time; who is
// "bearer". An empty token admits nobody.
func BearerToken(token string) Authorizer {
	return func(r *http.Request) (string, error) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return "", fmt.Errorf("%w: want Authorization: Bearer <token>", ErrUnauthenticated)
		}
		return "bearer", nil
	}
}

// DefaultMaxBody bounds an admin request's body: plans and weights
// are small.
const DefaultMaxBody = 64 << 10

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	loader  Loader
	auth    Authorizer
	open    bool // AllowUnauthenticated
	log     *slog.Logger
	maxBody int64
}

// WithLoader enables load and unload through l.
func WithLoader(l Loader) Option { return optionFunc(func(c *config) { c.loader = l }) }

// WithAuthorizer checks every request with a. A Handler needs one, or
// AllowUnauthenticated.
func WithAuthorizer(a Authorizer) Option {
	return optionFunc(func(c *config) { c.auth = a })
}

// AllowUnauthenticated builds a Handler without an Authorizer: every
// request is admitted, as "anonymous". The admin API changes what users
// are answered with, so this must be a decision, not a default: take it
// only for a listener that nothing but trusted callers can reach (a Unix
// socket, a sidecar's loopback behind its own authentication). New
// logs a warning when it is taken.
func AllowUnauthenticated() Option {
	return optionFunc(func(c *config) { c.open = true })
}

// ErrNoAuthorizer is New's error when it is given neither
// WithAuthorizer nor AllowUnauthenticated.
var ErrNoAuthorizer = serving.Errorf(serving.InvalidArgument,
	"admin: no authorizer: pass WithAuthorizer (e.g. BearerToken), or AllowUnauthenticated for a listener only trusted callers reach")

// WithLogger logs changes to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.log = l })
}

// WithMaxBody bounds request bodies (default DefaultMaxBody;
// larger ones are answered 413).
func WithMaxBody(n int64) Option {
	return optionFunc(func(c *config) { c.maxBody = n })
}

// Handler is the admin API, an http.Handler to mount on a private port: it
// shows every model's versions, readiness, weights, plan and shadow
// comparison, and changes them. Routes (JSON in and out):
//
//	GET    /v1/models                                 status of every model
//	GET    /v1/models/{model}                         status of one
//	POST   /v1/models/{model}/versions/{version}/load  load (WithLoader)
//	POST   /v1/models/{model}/versions/{version}/unload
//	PUT    /v1/models/{model}/weights                 {"1": 95, "2": 5}
//	POST   /v1/models/{model}/switch                  {"version": "2"}
//	POST   /v1/models/{model}/rollback
//	POST   /v1/models/{model}/plan                    start a plan (see planRequest)
//	POST   /v1/models/{model}/plan/{pause|resume|abort|promote}
//	PUT    /v1/models/{model}/mirror                  {"version": "2", "percent": 100, ...}
//	DELETE /v1/models/{model}/mirror                  stop mirroring
//
// A change answers with the model's status after it. Errors are JSON
// {"error": "..."}: 400 malformed or invalid input, 401/403 refused by the
// Authorizer, 404 unknown model, version or route, 405 wrong method (with
// Allow), 409 a change the current state does not allow (a version not
// ready), 413 a body over the limit, 501 load or unload without a Loader,
// 503 a closed router. Every change, done or refused by the router, is
// logged with slog: who, what, model, and the weights (or versions, plan,
// mirror) before and after; never a body or a credential. Safe for
// concurrent use; it holds no state of its own.
type Handler struct {
	reg     Registry
	cfg     config
	mux     *http.ServeMux
	handler http.Handler // mux behind the Authorizer
}

var _ http.Handler = (*Handler)(nil)

// New returns the admin API over the routers of reg. It is secure by
// default: without WithAuthorizer it refuses to build (ErrNoAuthorizer)
// unless the caller opts in with AllowUnauthenticated, which it logs as a
// warning; both at once are refused too, as a contradiction.
func New(reg Registry, opts ...Option) (*Handler, error) {
	a := &Handler{reg: reg, cfg: config{maxBody: DefaultMaxBody}, mux: http.NewServeMux()}
	for _, o := range opts {
		o.apply(&a.cfg)
	}
	if a.cfg.log == nil {
		a.cfg.log = slog.Default()
	}
	switch {
	case a.cfg.maxBody < 1:
		return nil, serving.Errorf(serving.InvalidArgument, "admin: max body %d < 1", a.cfg.maxBody)
	case a.cfg.auth != nil && a.cfg.open:
		return nil, serving.Errorf(serving.InvalidArgument, "admin: WithAuthorizer and AllowUnauthenticated: choose one")
	case a.cfg.auth == nil && !a.cfg.open:
		return nil, ErrNoAuthorizer
	case a.cfg.open:
		a.cfg.log.Warn("admin: API without authentication: every request is admitted (AllowUnauthenticated); keep its listener private")
	}
	// Patterns without methods: each handler checks its own, so a wrong
	// method gets a JSON 405 (the mux's own is plain text).
	a.mux.HandleFunc("/v1/models", a.only(a.list, http.MethodGet))
	a.mux.HandleFunc("/v1/models/{model}", a.only(a.show, http.MethodGet))
	a.mux.HandleFunc("/v1/models/{model}/versions/{version}/{op}", a.only(a.load, http.MethodPost))
	a.mux.HandleFunc("/v1/models/{model}/weights", a.only(a.weights, http.MethodPut))
	a.mux.HandleFunc("/v1/models/{model}/switch", a.only(a.switchTo, http.MethodPost))
	a.mux.HandleFunc("/v1/models/{model}/rollback", a.only(a.rollback, http.MethodPost))
	a.mux.HandleFunc("/v1/models/{model}/plan", a.only(a.startPlan, http.MethodPost))
	a.mux.HandleFunc("/v1/models/{model}/plan/{op}", a.only(a.steerPlan, http.MethodPost))
	a.mux.HandleFunc("/v1/models/{model}/mirror", a.only(a.mirror, http.MethodPut, http.MethodDelete))
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "admin: no route "+r.Method+" "+r.URL.Path)
	})
	a.handler = protect(a.cfg.auth, a.cfg.log, a.mux)
	return a, nil
}

// ServeHTTP authorises the request, then routes it.
func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}

// Protect puts h behind a: a request it refuses is answered as the Handler
// answers it (401 with WWW-Authenticate, or 403; a JSON error) and logged
// to log (nil: slog.Default) with where it came from, never a header. It
// is for pages served beside the admin API on its listener, such as a
// drift report or pprof, so that one credential guards every route there.
func (a Authorizer) Protect(h http.Handler, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return protect(a, log, h)
}

func protect(auth Authorizer, log *slog.Logger, h http.Handler) http.Handler {
	if auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := auth(r)
		if err != nil {
			status := http.StatusForbidden
			if errors.Is(err, ErrUnauthenticated) {
				status = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="servekit-admin"`)
			}
			log.Warn("admin: refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status)
			writeJSONError(w, status, err.Error())
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, who)))
	})
}

type whoKey struct{}

func who(r *http.Request) string {
	if s, ok := r.Context().Value(whoKey{}).(string); ok && s != "" {
		return s
	}
	return "anonymous"
}

// only admits the given methods, answering others 405 with Allow.
func (a *Handler) only(h http.HandlerFunc, methods ...string) http.HandlerFunc {
	allow := strings.Join(methods, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			writeJSONError(w, http.StatusMethodNotAllowed, "admin: "+r.Method+" "+r.URL.Path+": want "+allow)
			return
		}
		h(w, r)
	}
}

func (a *Handler) list(w http.ResponseWriter, _ *http.Request) {
	models := slices.Sorted(slices.Values(a.reg.Models()))
	out := struct {
		Models []modelView `json:"models"`
	}{Models: make([]modelView, 0, len(models))}
	for _, m := range models {
		if r, ok := a.reg.Router(m); ok {
			out.Models = append(out.Models, viewOf(r.Status()))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Handler) show(w http.ResponseWriter, r *http.Request) {
	if rt, ok := a.router(w, r); ok {
		writeJSON(w, http.StatusOK, viewOf(rt.Status()))
	}
}

// router finds the request's model, or answers 404.
func (a *Handler) router(w http.ResponseWriter, r *http.Request) (*rollout.Router, bool) {
	m := r.PathValue("model")
	rt, ok := a.reg.Router(m)
	if !ok {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("admin: no model %q", m))
	}
	return rt, ok
}

func (a *Handler) load(w http.ResponseWriter, r *http.Request) {
	model, version, op := r.PathValue("model"), r.PathValue("version"), r.PathValue("op")
	if op != "load" && op != "unload" {
		writeJSONError(w, http.StatusNotFound, "admin: no route "+r.Method+" "+r.URL.Path)
		return
	}
	if a.cfg.loader == nil {
		writeJSONError(w, http.StatusNotImplemented, "admin: "+op+" needs a model repository (WithLoader)")
		return
	}
	before := a.versionsOf(model)
	do := a.cfg.loader.Load
	if op == "unload" {
		do = a.cfg.loader.Unload
	}
	err := do(r.Context(), model, version)
	a.logChange(r, op, model, err, "version", version, "before", before, "after", a.versionsOf(model))
	if err != nil {
		writeError(w, err)
		return
	}
	rt, ok := a.reg.Router(model)
	if !ok { // unloading the last version may drop the model
		writeJSON(w, http.StatusOK, modelView{Model: model, Versions: []versionView{}})
		return
	}
	writeJSON(w, http.StatusOK, viewOf(rt.Status()))
}

// versionsOf describes a model's versions for the change log: name,
// readiness and weight, e.g. "1(ready,100%) 2(loading,0%)".
func (a *Handler) versionsOf(model string) string {
	r, ok := a.reg.Router(model)
	if !ok {
		return "none"
	}
	var b strings.Builder
	for i, v := range r.Status().Versions {
		if i > 0 {
			b.WriteByte(' ')
		}
		state := "ready"
		if !v.Ready {
			state = "not ready"
		}
		fmt.Fprintf(&b, "%s(%s,%g%%)", v.Version, state, v.Weight)
	}
	return b.String()
}

func (a *Handler) weights(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.router(w, r)
	if !ok {
		return
	}
	var body map[string]float64
	if !a.decode(w, r, &body) {
		return
	}
	if body == nil {
		writeJSONError(w, http.StatusBadRequest, `admin: weights: want an object such as {"1": 90, "2": 10}`)
		return
	}
	a.change(w, r, rt, "set_weights", func() error { return rt.SetWeights(body) })
}

func (a *Handler) switchTo(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.router(w, r)
	if !ok {
		return
	}
	var body struct {
		Version string `json:"version"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	if body.Version == "" {
		writeJSONError(w, http.StatusBadRequest, `admin: switch: want {"version": "..."}`)
		return
	}
	a.change(w, r, rt, "switch", func() error { return rt.Switch(body.Version) }, "version", body.Version)
}

func (a *Handler) rollback(w http.ResponseWriter, r *http.Request) {
	if rt, ok := a.router(w, r); ok && a.noBody(w, r) {
		a.change(w, r, rt, "rollback", rt.Rollback)
	}
}

func (a *Handler) startPlan(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.router(w, r)
	if !ok {
		return
	}
	var body planRequest
	if !a.decode(w, r, &body) {
		return
	}
	p, err := body.plan()
	if err != nil {
		writeError(w, err)
		return
	}
	a.change(w, r, rt, "start_plan", func() error { return rt.Start(p) }, "plan", body.String())
}

func (a *Handler) steerPlan(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.router(w, r)
	if !ok || !a.noBody(w, r) {
		return
	}
	op := r.PathValue("op")
	do, ok := map[string]func() error{"pause": rt.Pause, "resume": rt.Resume, "abort": rt.Abort, "promote": rt.Promote}[op]
	if !ok {
		writeJSONError(w, http.StatusNotFound, "admin: no route "+r.Method+" "+r.URL.Path+": want pause, resume, abort or promote")
		return
	}
	a.change(w, r, rt, op+"_plan", do)
}

func (a *Handler) mirror(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.router(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodDelete {
		if a.noBody(w, r) {
			a.change(w, r, rt, "stop_mirror", func() error { return rt.StopMirror(r.Context()) })
		}
		return
	}
	var body mirrorRequest
	if !a.decode(w, r, &body) {
		return
	}
	opts, err := body.options()
	if err != nil {
		writeError(w, err)
		return
	}
	a.change(w, r, rt, "mirror", func() error { return rt.Mirror(body.Version, *body.Percent, opts...) },
		"version", body.Version, "percent", *body.Percent)
}

// change applies do to rt, logs it with the state before and after, and
// answers with the model's status or the error.
func (a *Handler) change(w http.ResponseWriter, r *http.Request, rt *rollout.Router, what string, do func() error, attrs ...any) {
	before := summary(rt)
	err := do()
	a.logChange(r, what, rt.Model(), err, append(attrs, "before", before, "after", summary(rt))...)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(rt.Status()))
}

func (a *Handler) logChange(r *http.Request, what, model string, err error, attrs ...any) {
	attrs = append([]any{"who", who(r), "remote", r.RemoteAddr, "what", what, "model", model}, attrs...)
	if err != nil {
		a.cfg.log.Warn("admin: change refused", append(attrs, "err", err)...)
		return
	}
	a.cfg.log.Info("admin: change", attrs...)
}

// summary is what a change can alter, in one line for the log: weights,
// plan state and mirror, e.g. "weights 1=95% 2=5%; plan 2 running step
// 1/4; mirror 2 at 100%".
func summary(r *rollout.Router) string {
	var b strings.Builder
	b.WriteString("weights")
	w := r.Weights()
	for _, v := range slices.Sorted(maps.Keys(w)) {
		fmt.Fprintf(&b, " %s=%g%%", v, w[v])
	}
	st := r.Status()
	if p := st.Plan; p != nil && p.Active() {
		fmt.Fprintf(&b, "; plan %s %s step %d/%d", p.Canary, p.State, p.Step+1, len(p.Steps))
	}
	if v, s, ok := r.Mirroring(); ok {
		fmt.Fprintf(&b, "; mirror %s at %g%%", v, s.Snapshot().Percent)
	}
	return b.String()
}

// decode reads a JSON body of at most maxBody bytes into v: one value, no
// unknown fields. It answers 400 or 413 itself and reports whether to go
// on.
func (a *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := decodeBody(http.MaxBytesReader(w, r.Body, a.cfg.maxBody), v)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("admin: body over %d bytes", tooBig.Limit))
		return false
	}
	writeJSONError(w, http.StatusBadRequest, err.Error())
	return false
}

// noBody refuses a body on a route that takes none (a client sending one
// expects it to mean something), except an empty JSON object, which many
// clients send with every POST.
func (a *Handler) noBody(w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
	if t := bytes.TrimSpace(b); len(t) > 0 && !bytes.Equal(bytes.Join(bytes.Fields(t), nil), []byte("{}")) {
		writeJSONError(w, http.StatusBadRequest, "admin: "+r.URL.Path+" takes no body")
		return false
	}
	return true
}

// statusOf maps an error of a Router or Loader to the admin API's status.
// Unavailable is a conflict with the current state here (a version not
// ready) unless the router is closed.
func statusOf(err error) int {
	if errors.Is(err, serving.ErrClosed) {
		return http.StatusServiceUnavailable
	}
	switch serving.CodeOf(err) {
	case serving.InvalidArgument:
		return http.StatusBadRequest
	case serving.NotFound:
		return http.StatusNotFound
	case serving.Unavailable:
		return http.StatusConflict
	case serving.Unimplemented:
		return http.StatusNotImplemented
	case serving.ResourceExhausted:
		return http.StatusTooManyRequests
	case serving.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case serving.Canceled:
		return 499 // the client went away; nginx's code, never seen by it
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) { writeJSONError(w, statusOf(err), err.Error()) }

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // unreachable: views hold only encodable values
		status, b = http.StatusInternalServerError, []byte(`{"error":"admin: encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
