// Package admin is the operators' HTTP API over a process's rollout
// routers: JSON status of every model (versions, readiness, weights,
// stats, plan, shadow) and every change — load and unload (through a
// Loader: *repository.Repository), weights, switch, rollback, plans
// (start, pause, resume, abort, promote), mirror start and stop.
//
// Reach for New, on a private listener:
//
//	ctl, err := admin.New(repo, admin.WithLoader(repo),
//		admin.WithAuthorizer(admin.BearerToken(os.Getenv("ADMIN_TOKEN"))))
//	...
//	go http.ListenAndServe("127.0.0.1:9090", ctl)
//
// Handler lists the routes and statuses. An Authorizer sees each request
// and may refuse it (401 or 403, JSON); BearerToken is the simple one. It
// is secure by default: New without an Authorizer is an error unless the
// caller says AllowUnauthenticated (logged as a warning), because an admin
// API that admits everyone silently is one misrouted port away from anyone
// shifting traffic. Authorizer.Protect puts pages served beside it (a
// monitoring report, pprof) behind the same credential. Every change, done
// or refused, is logged with slog: who (from the Authorizer), what, the
// model and the state before and after, never a body or a credential. Bad
// input is a 4xx JSON error and changes nothing. A Handler holds no state
// of its own and is safe for concurrent use.
//
// Why a package of its own, beside rollout: the router's core is routing,
// and an HTTP surface with its decoding, authorisation and change log is
// another idea. It is a thin layer over Router methods. Registry and
// Loader are its interfaces: repository.Repository implements both, and
// Routers is a fixed Registry for a process without a repository.
package admin
