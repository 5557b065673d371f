// Command rollout walks one model through the seed's release sequence while
// a load generator sends it traffic: mirror the new version (shadow) →
// canary plan 1 % → 5 % → 25 % → 50 % → 100 % guarded by the shadow's
// agreement and the error rate → blue-green switch back → rollback. It
// prints what happens: shadow agreement, weights, plan steps and, at the
// end, how many requests failed (none should).
//
//	go run ./examples/rollout                 # about half a minute
//	go run ./examples/rollout -hold 500ms     # quicker
//
// The two versions are the demo fraud MLP (version 1) and a "retrained"
// one (version 2): the same network with its weights moved by seeded noise,
// built in memory with internal/onnxbuild. Both serve through one
// rollout.Router behind the Open Inference Protocol API (-addr); every step
// is taken through the admin API (admin.Handler) on its own listener
// (-admin-addr), with a bearer token (-admin-token, $SERVEKIT_ADMIN_TOKEN,
// else a random one that is printed), as an operator would:
//
//	curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9090/v1/models/fraud
//
// ONNX Runtime comes from -ort-lib or $ONNXRUNTIME_LIB.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving/httpapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rollout:", err)
		os.Exit(1)
	}
}

type options struct {
	addr, adminAddr, token string
	ortLib                 string
	hold                   time.Duration
	callers                int
	think                  time.Duration
	minPairs               int64
	minAgreement           float64
	verbose                bool
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("rollout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "inference API listen address")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:9090", "admin API listen address (keep it private)")
	fs.StringVar(&o.token, "admin-token", os.Getenv("SERVEKIT_ADMIN_TOKEN"), "admin bearer token ($SERVEKIT_ADMIN_TOKEN; random when empty)")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.DurationVar(&o.hold, "hold", 3*time.Second, "how long each phase and plan step holds")
	fs.IntVar(&o.callers, "callers", 8, "concurrent callers of the load generator")
	fs.DurationVar(&o.think, "think", time.Millisecond, "pause between one caller's requests")
	fs.Int64Var(&o.minPairs, "min-pairs", 200, "mirrored pairs the plan's agreement guard waits for")
	fs.Float64Var(&o.minAgreement, "min-agreement", 0.95, "lowest shadow agreement the plan accepts")
	fs.BoolVar(&o.verbose, "v", false, "log the admin API's change records")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.hold <= 0 || o.callers <= 0 {
		return nil, fmt.Errorf("-hold and -callers must be positive")
	}
	return o, nil
}

// report is what a run did, for the test.
type report struct {
	Phases   []string       // in order
	Load     loadCounts     // the load generator's tally
	Shadow   shadowView     // the mirror's final comparison
	Plan     string         // the plan's final state
	Weights  map[string]any // after the last phase
	AdminURL string
}

// run is main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdout io.Writer) (*report, error) {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return nil, err
	}
	shown := "<the -admin-token given>" // a token the user gave is a secret: never printed
	if o.token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		o.token = hex.EncodeToString(b)
		shown = o.token // made up for this run: print it so a person can use it
	}
	logLevel := slog.LevelWarn
	if o.verbose {
		logLevel = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: logLevel}))

	router, err := rollout.New("fraud", rollout.WithLogger(log))
	if err != nil {
		return nil, err
	}
	defer router.Close() // closes both models
	if err := putModels(router, o.ortLib); err != nil {
		return nil, err
	}

	api := httpapi.New()
	if err := api.Handle("fraud", router); err != nil {
		return nil, err
	}
	adm, err := admin.New(admin.Routers{router},
		admin.WithAuthorizer(admin.BearerToken(o.token)), admin.WithLogger(log))
	if err != nil {
		return nil, err
	}

	apiURL, stopAPI, err := serve(o.addr, api, log)
	if err != nil {
		return nil, err
	}
	defer stopAPI()
	adminURL, stopAdmin, err := serve(o.adminAddr, adm, log)
	if err != nil {
		return nil, err
	}
	defer stopAdmin()
	fmt.Fprintf(stdout, "model fraud: version 1 (stable) and 2 (retrained) on %s/v2/models/fraud\n", apiURL)
	fmt.Fprintf(stdout, "admin API on %s (Authorization: Bearer %s)\n", adminURL, shown)

	load := startLoad(apiURL, o.callers, o.think)
	d := &demo{o: o, out: stdout, admin: &adminClient{base: adminURL, token: o.token}, start: time.Now(), load: load}
	err = d.walk(ctx)
	counts := load.stop()
	defer d.admin.client.CloseIdleConnections()
	rep := &report{Phases: d.phases, Load: counts, Shadow: d.shadow, Plan: d.plan, AdminURL: adminURL}
	if st, serr := d.admin.status(context.WithoutCancel(ctx)); serr == nil {
		rep.Weights = st.weights()
	}
	fmt.Fprintf(stdout, "[%5.1fs] load: %d requests, %d failed; answered by version %s\n",
		d.since(), counts.Requests, counts.Failed, counts.byVersion())
	if err != nil {
		return rep, err
	}
	if counts.Failed > 0 {
		return rep, fmt.Errorf("%d of %d requests failed (first: %s)", counts.Failed, counts.Requests, counts.FirstError)
	}
	return rep, nil
}

// putModels loads both versions into the router: version 1 takes all
// traffic, version 2 joins at 0 %.
func putModels(router *rollout.Router, ortLib string) error {
	v1, v2, err := fraudVersions()
	if err != nil {
		return err
	}
	for _, m := range []struct {
		version string
		bytes   []byte
	}{{"1", v1}, {"2", v2}} {
		opts := []onnx.Option{onnx.WithName("fraud"), onnx.WithVersion(m.version), onnx.WithWarmup(1)}
		if ortLib != "" {
			opts = append(opts, onnx.WithLibraryPath(ortLib))
		}
		model, err := onnx.LoadBytes("fraud", m.bytes, opts...)
		if err != nil {
			return err
		}
		if err := router.Put(m.version, model); err != nil {
			return errors.Join(err, model.Close())
		}
	}
	return nil
}

// serve listens on addr and serves h until the returned stop is called.
func serve(addr string, h http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}
