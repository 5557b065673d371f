// Command hybrid rolls one model out across the network: from a version a
// V2 server serves (Triton, KServe, another servekit) to the same model
// embedded in this process, under the same guards as any rollout, then
// compares a challenger that lives on the server, in band, against the
// embedded model. Each remote version is a serving.Predictor
// (serving/remote), so the rollout.Router holds it as it holds a local
// one: weights, sticky keys, plans, guards and mirrors do not care where a
// version runs.
//
//	go run ./examples/hybrid                          # starts its own server
//	go run ./examples/hybrid -remote grpc://triton:8001
//
// The sequence, under load from concurrent callers:
//
//  1. version 1 (remote) takes all traffic; version 2 (in process, the same
//     weights) shadows it: every answer compared, in band;
//  2. a canary plan moves traffic 10 % → 50 % → 100 % to version 2, held
//     while the shadow agrees and the error rate stays under 1 %;
//  3. version 3, a retrained challenger on the server, shadows version 2:
//     its agreement and latency are measured before anyone sees it.
//
// It ends by counting the requests that failed: none should. Without
// -remote, the server is servekit's own REST + gRPC transport on loopback,
// serving versions 1 and 3 (it stands in for Triton: the client does not
// know the difference). ONNX Runtime comes from -ort-lib or
// $ONNXRUNTIME_LIB.
package main

import (
	"context"
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

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hybrid:", err)
		os.Exit(1)
	}
}

type options struct {
	remote, protocol, ortLib string
	hold, think              time.Duration
	callers                  int
	minPairs                 int64
}

// report is what a run did, for the test.
type report struct {
	Load       counts
	Plan       rollout.PlanState
	Weights    map[string]float64
	Migration  rollout.ShadowSnapshot // version 2 shadowing remote version 1
	Challenger rollout.ShadowSnapshot // remote version 3 shadowing version 2
}

func run(ctx context.Context, args []string, out io.Writer) (*report, error) {
	o := &options{}
	fs := flag.NewFlagSet("hybrid", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.remote, "remote", "", "V2 server holding model fraud at versions 1 and 3 (http://, grpc://); empty: start one here")
	fs.StringVar(&o.protocol, "protocol", "grpc", "how to reach the server this program starts: rest or grpc")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.DurationVar(&o.hold, "hold", 2*time.Second, "how long each phase and plan step holds")
	fs.IntVar(&o.callers, "callers", 8, "concurrent callers")
	fs.DurationVar(&o.think, "think", time.Millisecond, "pause between one caller's requests")
	fs.Int64Var(&o.minPairs, "min-pairs", 200, "compared pairs the plan's agreement guard waits for")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.hold <= 0 || o.callers <= 0 || (o.protocol != "rest" && o.protocol != "grpc") {
		return nil, errors.New("-hold and -callers must be positive, -protocol rest or grpc")
	}
	v1, v3, err := fraudVersions()
	if err != nil {
		return nil, err
	}
	load := func(version string, b []byte) (*onnx.Model, error) {
		opts := []onnx.Option{onnx.WithName("fraud"), onnx.WithVersion(version), onnx.WithWarmup(1)}
		if o.ortLib != "" {
			opts = append(opts, onnx.WithLibraryPath(o.ortLib))
		}
		return onnx.LoadBytes("fraud", b, opts...)
	}

	target := o.remote
	if target == "" {
		url, stop, err := startServer(load, v1, v3, o.protocol)
		if err != nil {
			return nil, err
		}
		defer stop()
		target = url
		fmt.Fprintf(out, "V2 server (standing in for Triton) serving fraud versions 1 and 3 on %s\n", target)
	}

	// The router holds remote version 1 and version 2 in process. It
	// closes both when it closes.
	router, err := rollout.New("fraud", rollout.WithLogger(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return nil, err
	}
	defer router.Close()
	// The probe lets the router route around a server that goes down.
	probe := remote.WithReadinessProbe(time.Second)
	remote1, err := remote.Dial(ctx, target, "fraud", remote.WithVersion("1"), probe)
	if err != nil {
		return nil, err
	}
	if err := router.Put("1", remote1); err != nil {
		return nil, errors.Join(err, remote1.Close())
	}
	local, err := load("2", v1) // the same weights, embedded: a migration, not a new model
	if err != nil {
		return nil, err
	}
	if err := router.Put("2", local); err != nil {
		return nil, errors.Join(err, local.Close())
	}

	d := &demo{o: o, out: out, r: router, start: time.Now()}
	g := startLoad(router, o.callers, o.think)
	rep := &report{}
	err = d.walk(ctx, target, rep)
	rep.Load = g.stop()
	rep.Weights = router.Weights()
	d.say("load: %d requests, %d failed; answered by version %v", rep.Load.Requests, rep.Load.Failed, rep.Load.ByVersion)
	if err != nil {
		return rep, err
	}
	if rep.Load.Failed > 0 {
		return rep, fmt.Errorf("%d of %d requests failed (first: %v)", rep.Load.Failed, rep.Load.Requests, rep.Load.First)
	}
	return rep, nil
}

// startServer serves versions 1 and 3 of the model over REST and gRPC on
// one loopback port, and returns its address for the protocol asked.
func startServer(load func(string, []byte) (*onnx.Model, error), v1, v3 []byte, protocol string) (string, func(), error) {
	h := httpapi.New()
	var models []*onnx.Model
	closeAll := func() {
		for _, m := range models {
			m.Close()
		}
	}
	for _, v := range []struct {
		name string
		b    []byte
	}{{"1", v1}, {"3", v3}} {
		m, err := load(v.name, v.b)
		if err != nil {
			closeAll()
			return "", nil, err
		}
		models = append(models, m)
		if err := h.Handle("fraud", m, httpapi.Version(v.name)); err != nil {
			closeAll()
			return "", nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeAll()
		return "", nil, err
	}
	srv := &http.Server{Handler: grpcapi.New(h, grpcapi.WithFallback(h)), Protocols: grpcapi.Protocols(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		closeAll()
	}
	scheme := "http://"
	if protocol == "grpc" {
		scheme = "grpc://"
	}
	return scheme + ln.Addr().String(), stop, nil
}

// demo walks the sequence and says what happens.
type demo struct {
	o     *options
	out   io.Writer
	r     *rollout.Router
	start time.Time
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] "+format+"\n", append([]any{time.Since(d.start).Seconds()}, args...)...)
}

// hold waits one phase, or until ctx ends.
func (d *demo) hold(ctx context.Context) error {
	t := time.NewTimer(d.o.hold)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *demo) walk(ctx context.Context, target string, rep *report) error {
	// 1. The embedded model shadows the remote one: before any caller
	// sees it, every answer is compared with the server's.
	if err := d.r.Mirror("2", 100); err != nil {
		return err
	}
	d.say("mirror: version 2 (in process) shadows version 1 (remote); callers see version 1")
	if err := d.hold(ctx); err != nil {
		return err
	}
	d.printShadow(d.r.Status().Shadow)

	// 2. The canary plan, with the guards any rollout has.
	plan := rollout.Plan{Canary: "2", Stable: "1", Interval: max(d.o.hold/8, 10*time.Millisecond),
		Steps: []rollout.Step{{Weight: 10, Hold: d.o.hold}, {Weight: 50, Hold: d.o.hold}, {Weight: 100}},
		Guards: []rollout.Guard{rollout.MinAgreement(0.99, d.o.minPairs), rollout.MaxErrorRate(0.01),
			rollout.MaxErrorRateIncrease(0.01)}}
	if err := d.r.Start(plan); err != nil {
		return err
	}
	d.say("plan: canary 2, 10%% → 50%% → 100%%, each held %v while agreement ≥ 99%% (after %d pairs) and errors ≤ 1%%", d.o.hold, d.o.minPairs)
	st, err := d.waitPlan(ctx)
	if err != nil {
		return err
	}
	rep.Plan = st.State
	d.say("plan %s: weights %v %s", st.State, d.r.Weights(), st.Reason)
	if err := d.r.StopMirror(ctx); err != nil {
		return err
	}
	if s := d.r.Status().Shadow; s != nil {
		rep.Migration = *s
		d.printShadow(s)
	}
	if st.State != rollout.PlanSucceeded {
		return fmt.Errorf("the plan ended %s: %s", st.State, st.Reason)
	}

	// 3. A challenger on the server shadows the embedded model, in band.
	remote3, err := remote.Dial(ctx, target, "fraud", remote.WithVersion("3"), remote.WithReadinessProbe(time.Second))
	if err != nil {
		return err
	}
	if err := d.r.Put("3", remote3); err != nil {
		return errors.Join(err, remote3.Close())
	}
	if err := d.r.Mirror("3", 100); err != nil {
		return err
	}
	d.say("mirror: version 3 (remote, retrained) shadows version 2; callers see version 2")
	if err := d.hold(ctx); err != nil {
		return err
	}
	if err := d.r.StopMirror(ctx); err != nil {
		return err
	}
	if s := d.r.Status().Shadow; s != nil {
		rep.Challenger = *s
		d.printShadow(s)
	}
	return nil
}

// waitPlan polls the plan's status until it ends.
func (d *demo) waitPlan(ctx context.Context) (rollout.PlanStatus, error) {
	tick := time.NewTicker(max(d.o.hold/10, 10*time.Millisecond))
	defer tick.Stop()
	step := -1
	for {
		st := d.r.Status().Plan
		if st.Step != step && st.Active() {
			step = st.Step
			d.say("plan step %d/%d: weights %v", step+1, len(st.Steps), d.r.Weights())
		}
		if !st.Active() {
			return *st, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return *st, ctx.Err()
		}
	}
}

func (d *demo) printShadow(s *rollout.ShadowSnapshot) {
	if s == nil {
		return
	}
	d.say("shadow %s: %d pairs compared (%d dropped: the shadow never slows callers), %d challenger errors",
		s.Challenger, s.Pairs, s.Dropped, s.Shadow.Errors)
	for _, o := range s.Outputs {
		d.say("  %s: agreement %.2f%%, max |diff| %.3g; p99 primary %v, challenger %v",
			o.Name, 100*o.Agreement, o.MaxAbsDiff, s.Primary.P99.Round(time.Microsecond), s.Shadow.P99.Round(time.Microsecond))
	}
}
