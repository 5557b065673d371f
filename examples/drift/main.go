// Command drift is the monitoring loop end to end: the demo fraud model
// serves traffic whose distribution shifts halfway, a drift monitor
// compares every window with the reference profile built from training
// data, the alert goes by webhook to a local receiver that stands for a
// retraining pipeline, and the HTML report is written.
//
//	go run ./examples/drift                      # 20000 rows, shift at half
//	go run ./examples/drift -serve 127.0.0.1:8081  # then keep serving the report
//
// ONNX Runtime comes from -ort-lib or $ONNXRUNTIME_LIB.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "drift:", err)
		os.Exit(1)
	}
}

type options struct {
	model, ortLib   string
	rows, window    int
	batch           int
	shiftAt         float64
	training        int
	report, profile string
	serve           string
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.model, "model", "testdata/models/fraud.onnx", "the demo fraud model")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv(onnx.EnvLibraryPath), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.IntVar(&o.rows, "rows", 20000, "rows of traffic to serve")
	fs.IntVar(&o.window, "window", 1000, "rows per drift window (tumbling)")
	fs.IntVar(&o.batch, "batch", 50, "rows per request")
	fs.Float64Var(&o.shiftAt, "shift-at", 0.5, "when the traffic shifts, as a share of -rows")
	fs.IntVar(&o.training, "training", 20000, "rows of training data the reference profile is built from")
	fs.StringVar(&o.report, "report", "drift_report.html", "where the HTML report is written")
	fs.StringVar(&o.profile, "profile-repo", "", "write the profile to <dir>/fraud/1/drift_profile.json (a model repository); default a temporary directory")
	fs.StringVar(&o.serve, "serve", "", "after the run, serve the live report at this address until interrupted")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.rows < 1 || o.window < 1 || o.batch < 1 || o.shiftAt < 0 || o.shiftAt > 1 || o.training < 100 {
		return nil, errors.New("want positive -rows, -window and -batch, -shift-at in [0, 1] and -training of at least 100")
	}
	return o, nil
}

// summary is what a run found; the test reads it.
type summary struct {
	shiftRow    int            // the first shifted row
	alarms      []drift.Window // windows that ended with a raised alarm
	firstRaised drift.Window   // the window whose alert raised the alarm
	delivered   []drift.Alert  // what the retraining pipeline received
	reportPath  string
}

func run(ctx context.Context, args []string, w io.Writer) (*summary, error) {
	// The monitor's worker, the receiver and this goroutine all print.
	out := &syncWriter{w: w}
	o, err := parseFlags(args, out)
	if err != nil {
		return nil, err
	}
	if _, err := onnx.InitRuntime(o.ortLib); err != nil {
		return nil, err
	}
	model, err := onnx.Load(o.model, onnx.WithName("fraud"), onnx.WithVersion("1"))
	if err != nil {
		return nil, err
	}
	defer model.Close()

	// 1. The reference: training data through the model, so the score is
	// profiled too. It ships beside the model version.
	prof, err := trainingProfile(ctx, model, o.training)
	if err != nil {
		return nil, err
	}
	repo := o.profile
	if repo == "" {
		if repo, err = os.MkdirTemp("", "servekit-drift-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(repo)
	}
	path := filepath.Join(repo, "fraud", "1", drift.ProfileFileName)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := prof.WriteFile(path); err != nil {
		return nil, err
	}
	profiles, err := drift.ReadRepository(repo)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "reference profile: %d training rows, %d features, written to %s\n", o.training, len(prof.Features), path)

	// 2. The retraining pipeline: a local receiver for the webhook.
	rx, err := startReceiver(out)
	if err != nil {
		return nil, err
	}
	defer rx.close()
	hook, err := webhook.New(rx.url, webhook.WithBackoff(50*time.Millisecond, time.Second))
	if err != nil {
		return nil, err
	}
	defer hook.Close()

	// 3. The monitor, in front of the model.
	s := &summary{shiftRow: int(float64(o.rows) * o.shiftAt), reportPath: o.report}
	var mu sync.Mutex
	mon, err := drift.NewMonitor(
		drift.WithProfile(profiles[0]),
		drift.WithWindow(drift.CountWindow(o.window, 0)),
		drift.WithAlertFunc(func(a drift.Alert) { hook.Send(a) }),
		drift.WithAlertFunc(func(a drift.Alert) {
			mu.Lock()
			defer mu.Unlock()
			if a.Kind == drift.AlertRaised && s.firstRaised.Index == 0 {
				s.firstRaised = a.Result.Window
			}
			fmt.Fprintf(out, "alert %s after window %d (rows %d-%d): %s\n", a.Kind, a.Result.Window.Index,
				(a.Result.Window.Index-1)*int64(o.window)+1, a.Result.Window.Index*int64(o.window), a.Reason)
		}))
	if err != nil {
		return nil, err
	}
	defer mon.Close()
	p := serving.Chain(mon.Middleware())(model)

	// 4. Traffic: like the training data, then a wave of large foreign
	// card-not-present payments.
	fmt.Fprintf(out, "serving %d rows; the traffic shifts at row %d\n", o.rows, s.shiftRow+1)
	g := newTraffic(2)
	for done := 0; done < o.rows; done += o.batch {
		n := min(o.batch, o.rows-done)
		req := g.request(n, done >= s.shiftRow)
		if _, err := p.Predict(ctx, req); err != nil {
			return nil, err
		}
		if (done+n)%o.window == 0 || done+n == o.rows {
			// Wait for the window to be evaluated, so the log reads in
			// order; a real service never waits for the monitor.
			if err := mon.Flush(ctx); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range mon.Results("fraud", "1") {
		if len(r.Alarmed) > 0 {
			s.alarms = append(s.alarms, r.Window)
		}
	}

	// 5. Deliver what is queued, then the report.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := hook.Shutdown(sctx); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	s.delivered = rx.alerts()
	fmt.Fprintf(out, "webhook: %d alert(s) delivered to the retraining pipeline (%+v)\n", len(s.delivered), hook.Stats())
	if err := report.WriteFile(o.report, report.Drift(mon)); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "report written to %s\n", o.report)
	if o.serve != "" {
		return s, serveReport(ctx, o.serve, mon, out)
	}
	return s, nil
}

func trainingProfile(ctx context.Context, model serving.Predictor, rows int) (*drift.Profile, error) {
	b, err := drift.NewProfileBuilder("fraud", "1", features())
	if err != nil {
		return nil, err
	}
	g := newTraffic(1)
	for done := 0; done < rows; done += 500 {
		req := g.request(min(500, rows-done), false)
		resp, err := model.Predict(ctx, req)
		if err != nil {
			return nil, err
		}
		if err := b.AddRequest(req, resp); err != nil {
			return nil, err
		}
	}
	return b.Profile()
}

// receiver stands for a retraining pipeline: it takes drift alerts over
// HTTP and would start a training job.
type receiver struct {
	url  string
	srv  *http.Server
	done chan struct{}
	mu   sync.Mutex
	got  []drift.Alert
}

func startReceiver(out io.Writer) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rx := &receiver{url: "http://" + ln.Addr().String() + "/retrain", done: make(chan struct{})}
	rx.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a drift.Alert
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&a); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "{\"error\": %q}\n", err.Error())
			return
		}
		rx.mu.Lock()
		rx.got = append(rx.got, a)
		rx.mu.Unlock()
		if a.Kind == drift.AlertRaised {
			fmt.Fprintf(out, "retraining pipeline: drift in %s version %s (%s): would retrain on recent traffic\n",
				a.Model, a.Version, strings.Join(a.Raised, ", "))
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() {
		defer close(rx.done)
		rx.srv.Serve(ln)
	}()
	return rx, nil
}

func (rx *receiver) alerts() []drift.Alert {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return append([]drift.Alert(nil), rx.got...)
}

func (rx *receiver) close() {
	rx.srv.Close()
	<-rx.done
}

func serveReport(ctx context.Context, addr string, mon *drift.Monitor, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: report.Handler(report.Drift(mon)), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "serving the report at http://%s/ until interrupted\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
