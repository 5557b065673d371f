// Command closedloop runs the whole life of a model in one process, in
// about a minute: the loop a platform team builds around Triton or KServe,
// made of servekit's packages.
//
//  1. A fraud model (logistic regression, fitted here in Go) is trained on
//     labelled history and written as version 1 into a model repository,
//     with the drift profile of its training data beside it.
//  2. A nightly batch job (batch/job) scores a Parquet file with it.
//  3. The real-time server (repository → rollout.Router; per version
//     predlog → cache → batch → ONNX Runtime; telemetry and the drift
//     monitor above the router; /metrics; the admin API on its own port)
//     serves a load generator whose world drifts halfway: a fraud wave.
//     Labels come back late, as chargebacks, into a feedback file.
//  4. The drift monitor alerts; its webhook reaches the retrainer, which
//     fits version 2 on the logged recent traffic joined with the labels,
//     and writes it into the repository.
//  5. The repository loads version 2 at 0 %; the controller shadows it,
//     then runs a canary plan 5 % → 25 % → 50 % → 100 % whose guards
//     (errors, p99, shadow sanity and agreement, drift, and the AUC of the
//     canary against the stable on labelled traffic, from package
//     quality, which the chargebacks reach through POST …/labels) promote
//     it, or roll it back at once when it is broken (-break-v2).
//  6. It prints the timeline and the totals: no request may fail.
//
// Usage:
//
//	go run ./examples/closedloop                 # the story, then exit
//	go run ./examples/closedloop -break-v2       # version 2 answers NaN: rolled back
//	go run ./examples/closedloop -serve          # then keep serving for Grafana / the drift report
//
// Everything is generated under -dir (a temporary directory, removed at
// the end, by default). ONNX Runtime comes from -ort-lib or
// $ONNXRUNTIME_LIB.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "closedloop:", err)
		os.Exit(1)
	}
}

type options struct {
	dir, ortLib                  string
	addr, adminAddr, token       string
	seed                         uint64
	history, nightlyRows         int
	callers                      int
	rate                         float64
	shiftAfter                   int
	window                       int
	labelDelay, logRotate, poll  time.Duration
	trainRows                    int
	shadowPairs, minRequests     int64
	steps                        []float64
	hold, interval, tail, maxP99 time.Duration
	minAgreement, aucMargin      float64
	minLabelled                  int
	breakV2, serveAfter, verbose bool
	timeout                      time.Duration
}

func (o *options) repoDir() string { return filepath.Join(o.dir, "repo") }
func (o *options) logDir() string  { return filepath.Join(o.dir, "predictions") }

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("closedloop", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dir, "dir", "", "where the repository, datasets, logs and labels go (default: a temporary directory, removed at the end)")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv(onnx.EnvLibraryPath), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "inference API and /metrics (examples/monitoring/prometheus.yml scrapes 127.0.0.1:8080)")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:9090", "admin API and drift report (keep it private)")
	fs.StringVar(&o.token, "admin-token", os.Getenv("SERVEKIT_ADMIN_TOKEN"), "admin bearer token ($SERVEKIT_ADMIN_TOKEN; random when empty)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the simulated world")
	fs.IntVar(&o.history, "history", 20_000, "labelled historical transactions v1 is trained on (a fifth held out)")
	fs.IntVar(&o.nightlyRows, "nightly-rows", 100_000, "transactions the nightly batch job scores")
	fs.IntVar(&o.callers, "callers", 8, "concurrent callers of the load generator")
	fs.Float64Var(&o.rate, "rate", 250, "requests per second, all callers together")
	fs.IntVar(&o.shiftAfter, "shift-after", 6000, "requests before the world drifts")
	fs.IntVar(&o.window, "window", 1000, "rows per drift window")
	fs.DurationVar(&o.labelDelay, "label-delay", 2*time.Second, "how late a transaction's label (chargeback) arrives")
	fs.DurationVar(&o.logRotate, "log-rotate", time.Second, "how often prediction log files are finished (what the retrainer can read)")
	fs.DurationVar(&o.poll, "poll", 250*time.Millisecond, "how often the repository looks for new versions")
	fs.IntVar(&o.trainRows, "train-rows", 2000, "labelled drifted transactions the retrainer waits for (a quarter held out)")
	fs.Int64Var(&o.shadowPairs, "shadow-pairs", 1000, "compared pairs the shadow phase waits for, and MinAgreement's minimum")
	fs.Int64Var(&o.minRequests, "min-requests", 20, "canary requests each step needs before its other guards judge")
	steps := fs.String("steps", "5,25,50", "canary weights in percent; 100 follows the last")
	fs.DurationVar(&o.hold, "hold", 5*time.Second, "how long each canary step holds")
	fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "how often the plan's guards are checked")
	fs.DurationVar(&o.maxP99, "max-p99", 250*time.Millisecond, "the canary's p99 budget (guard)")
	fs.Float64Var(&o.minAgreement, "min-agreement", 0.6, "lowest shadow agreement at the decision threshold (guard; see guards.go for why so low)")
	fs.Float64Var(&o.aucMargin, "auc-margin", 0.02, "how far the canary's AUC may fall below the stable's (guard)")
	fs.IntVar(&o.minLabelled, "min-labelled", 300, "labelled transactions both versions answered before the AUC guard judges")
	fs.DurationVar(&o.tail, "tail", 3*time.Second, "how long traffic goes on after the plan ends")
	fs.BoolVar(&o.breakV2, "break-v2", false, "write version 2 broken (NaN weights): the plan must roll back")
	fs.BoolVar(&o.serveAfter, "serve", false, "after the story, keep serving (metrics, admin API, drift report) until interrupted")
	fs.BoolVar(&o.verbose, "v", false, "log the repository's and the router's changes")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the story takes longer")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*steps, ",") {
		w, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || w <= 0 || w >= 100 {
			return nil, fmt.Errorf("-steps %q: want weights between 0 and 100, comma-separated", *steps)
		}
		o.steps = append(o.steps, w)
	}
	switch {
	case o.callers < 1 || o.rate <= 0 || o.shiftAfter < 1 || o.window < 100:
		return nil, errors.New("want -callers ≥ 1, -rate > 0, -shift-after ≥ 1 and -window ≥ 100")
	case o.history < 1000 || o.trainRows < 200 || o.nightlyRows < 1:
		return nil, errors.New("want -history ≥ 1000, -train-rows ≥ 200 and -nightly-rows ≥ 1")
	case o.hold <= 0 || o.interval <= 0 || o.logRotate <= 0 || o.poll <= 0 || o.timeout <= 0:
		return nil, errors.New("want positive -hold, -interval, -log-rotate, -poll and -timeout")
	}
	return o, nil
}

// runReport is what a run did; the test reads it.
type runReport struct {
	Events  []event
	Load    tally
	Outcome *outcome
	Trained *model
	Weights map[string]float64 // from the admin API, after the story
}

// run is main without the process: the tests call it in-process.
func run(ctx context.Context, args []string, stdout io.Writer) (rep *runReport, err error) {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return nil, err
	}
	parent := ctx // -serve waits on it: the story's timeout does not end the serving
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	out := &syncWriter{w: stdout}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	shown := "<the -admin-token given>" // a token the user gave is a secret: never printed
	if o.token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		o.token = hex.EncodeToString(b)
		shown = o.token // made up for this run: print it so a person can use it
	}
	keep := o.dir != ""
	if !keep {
		if o.dir, err = os.MkdirTemp("", "servekit-closedloop-"); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(o.dir)) }()
	}
	if _, err := onnx.InitRuntime(o.ortLib); err != nil {
		return nil, err
	}
	tl := newTimeline(out)
	rep = &runReport{}

	// 1–2: v1 and the nightly batch job.
	if err := trainV1(o, tl); err != nil {
		return rep, err
	}
	if err := nightly(ctx, o, tl); err != nil {
		return rep, err
	}

	// 3: the retrainer, the server, the traffic.
	labels := filepath.Join(o.dir, "labels.jsonl")
	hist := newHistory(o.logDir(), labels)
	rt, err := startRetrainer(o, hist, tl)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, rt.close()) }() // after the server: its webhook posts here
	srv, err := startServer(ctx, o, tl, log, rt.url, rt.key)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, srv.close(context.WithoutCancel(ctx))) }()
	tl.add(time.Now(), evServing, "serving v1 on %s/v2/models/%s (metrics at /metrics); admin API and drift report on %s (Bearer %s)",
		srv.apiURL, modelName, srv.adminURL, shown)
	fb, err := openFeedback(labels, srv.apiURL+"/v2/models/"+modelName+"/labels", o.token, o.labelDelay)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, fb.close()) }() // after the load: it records labels
	load := startLoad(o, srv.apiURL, fb, tl)
	tl.say("load: %d callers, %g requests/s in all; the world drifts after request %d", o.callers, o.rate, o.shiftAfter)

	// 4–5: drift → retrain → load → shadow → canary, driven by the events.
	ctl := &controller{o: o, repo: srv.repo, mon: srv.mon, qm: srv.qm, hist: hist, tl: tl}
	outcome, storyErr := ctl.run(ctx, "1")
	rep.Outcome = outcome
	if storyErr == nil {
		tl.say("traffic goes on for %v", o.tail)
		storyErr = sleep(ctx, o.tail)
	}
	rep.Load = load.stop()
	rep.Trained = rt.last()

	// 6: totals and the timeline.
	t := rep.Load
	tl.add(time.Now(), evTotals, "totals: %d requests, %d failed, %d answered NaN; answered by %s; p99 %v (callers' view, HTTP included)",
		t.Requests, t.Failed, t.NonFinite, t.byVersion(), t.P99().Round(100*time.Microsecond))
	var adminErr error
	if rep.Weights, adminErr = adminWeights(context.WithoutCancel(ctx), srv.adminURL, o.token); adminErr == nil {
		tl.say("admin API: GET /v1/models/%s: weights %v", modelName, rep.Weights)
	}
	if keep {
		path := filepath.Join(o.dir, "drift_report.html")
		if err := report.WriteFile(path, report.Drift(srv.mon), report.Quality(srv.qm)); err != nil {
			tl.say("drift report: %v", err)
		} else {
			tl.say("drift report written to %s", path)
		}
	}
	rep.Events = tl.events()
	tl.print()
	if err := errors.Join(storyErr, adminErr); err != nil {
		return rep, err
	}
	if t.Failed > 0 {
		return rep, fmt.Errorf("%d of %d requests failed (first: %s)", t.Failed, t.Requests, t.FirstError)
	}
	if o.serveAfter {
		fmt.Fprintf(out, "\nserving until interrupted: %s/v2/models/%s, %s/metrics, %s/drift/, admin %s/v1/models/%s (Bearer %s)\n",
			srv.apiURL, modelName, srv.apiURL, srv.adminURL, srv.adminURL, modelName, shown)
		<-parent.Done()
	}
	return rep, nil
}

// adminWeights reads the model's weights from the admin API, as an
// operator would.
func adminWeights(ctx context.Context, base, token string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/models/"+modelName, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Close = true // one request: no idle connection left behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Versions []struct {
			Version string  `json:"version"`
			Weight  float64 `json:"weight"`
		} `json:"versions"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	w := map[string]float64{}
	for _, v := range st.Versions {
		if v.Weight > 0 {
			w[v.Version] = v.Weight
		}
	}
	return w, nil
}
