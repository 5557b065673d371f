// Command loanrisk is the seed's loan-risk case with a model as
// scikit-learn exports it: testdata/models/tabular/loan_columns.onnx, a
// Pipeline(ColumnTransformer(imputer + scaler, one-hot purpose),
// LogisticRegression) converted by skl2onnx from a DataFrame, with its
// default options. It takes one [N, 1] input per column (age and income
// FP32, n_loans INT64, purpose STRING) and answers a STRING label, "high"
// or "low" risk, and the ZipMap probabilities, served as FP32 [N, 2] with
// the class labels in the metadata.
//
//  1. Overnight, the batch job scores the day's applications from a
//     Parquet file (one column per model input, plus the application id)
//     into Parquet parts; its summary counts the labels.
//
//  2. The same applications give the drift profile, the purpose column
//     profiled as categorical.
//
//  3. In real time the model serves over HTTP behind the drift monitor, a
//     cache and the micro-batcher. A V2 request with per-column inputs, a
//     KServe V1 request whose instances are objects, and the
//     classification extension ("high"/"low" with their probabilities)
//     all answer; then a dealer's promotion floods in car loans and the
//     monitor raises drift on purpose.
//
//     go run ./examples/loanrisk                          # the whole story
//     go run ./examples/loanrisk -serve 127.0.0.1:8080    # then keep serving
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
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loanrisk:", err)
		os.Exit(1)
	}
}

type options struct {
	model, ortLib, dir, serve string
	overnight, window, batch  int
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loanrisk", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.model, "model", "testdata/models/tabular/loan_columns.onnx", "the skl2onnx loan-risk pipeline")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv(onnx.EnvLibraryPath), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.StringVar(&o.dir, "dir", "", "where the applications and scores are written (default a temporary directory)")
	fs.IntVar(&o.overnight, "overnight", 20000, "applications scored overnight")
	fs.IntVar(&o.window, "window", 500, "rows per drift window")
	fs.IntVar(&o.batch, "batch", 25, "applications per real-time request")
	fs.StringVar(&o.serve, "serve", "", "after the story, keep serving at this address until interrupted")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.overnight < 100 || o.window < 100 || o.batch < 1 {
		return nil, errors.New("want -overnight and -window of at least 100 and a positive -batch")
	}
	return o, nil
}

// summary is what a run found; the test reads it.
type summary struct {
	overnight *job.Summary
	labels    []string // the model's class labels, from its metadata
	v2, v1    string   // the real-time answers, as the server wrote them
	classes   string   // the classification extension's answer
	alarmed   []string // features in alarm after the promotion
	reason    string
}

func run(ctx context.Context, args []string, w io.Writer) (*summary, error) {
	o, err := parseFlags(args, w)
	if err != nil {
		return nil, err
	}
	if _, err := onnx.InitRuntime(o.ortLib); err != nil {
		return nil, err
	}
	model, err := onnx.Load(o.model, onnx.WithName("loanrisk"), onnx.WithVersion("1"))
	if err != nil {
		return nil, err
	}
	defer model.Close()
	md := model.Metadata()
	s := &summary{}
	if p, ok := md.Output("output_probability"); ok {
		s.labels = p.Labels
	}
	fmt.Fprintf(w, "model %s: inputs %s; outputs %s\n", md.Name, specs(md.Inputs), specs(md.Outputs))

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "servekit-loanrisk-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	r := rand.New(rand.NewPCG(2026, 12))

	// 1. Overnight: the day's applications, scored by the batch job. The
	// default schema reads each model input from the column of its name;
	// the id is carried through to join the scores back.
	day := generate(r, o.overnight, 0, usual)
	in := filepath.Join(dir, "applications.parquet")
	if err := day.write(in); err != nil {
		return nil, err
	}
	s.overnight, err = job.Run(ctx, model, in, filepath.Join(dir, "scores"),
		job.WithSchema(rowio.Schema{Keys: []rowio.Field{{Name: "id"}}}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\novernight: scored %s into %s\n%s", in, filepath.Join(dir, "scores"), s.overnight)

	// 2. The drift profile: one feature per column, purpose and the
	// predicted label categorical, from the same applications.
	prof, err := profile(ctx, model, day)
	if err != nil {
		return nil, err
	}
	for _, f := range prof.Features {
		fmt.Fprintf(w, "profile: %-12s %-11s %s\n", f.Name, f.Kind, profiled(f))
	}

	// 3. Real time: drift monitor → cache → batcher → model, over HTTP.
	mon, err := drift.NewMonitor(drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(o.window, 0)))
	if err != nil {
		return nil, err
	}
	defer mon.Close()
	c, err := cache.New(cache.WithMaxEntries(10_000), cache.WithTTL(time.Minute))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	chain := serving.Chain(mon.Middleware(), c.Middleware(), batch.Middleware(batch.WithMaxBatchRows(256)))(model)
	defer serving.Close(chain)
	h := httpapi.New()
	if err := h.Handle("loanrisk", chain); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("/drift", report.Handler(report.Drift(mon)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	cl := &client{base: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 10 * time.Second}}

	if err := s.realTime(ctx, cl, w); err != nil {
		return nil, err
	}
	if err := s.promotion(ctx, cl, mon, r, o, w); err != nil {
		return nil, err
	}
	if o.serve != "" {
		return s, serveUntil(ctx, o.serve, mux, w)
	}
	return s, nil
}

// profile runs the applications through the model and profiles inputs and
// the predicted label.
func profile(ctx context.Context, model serving.Predictor, a applications) (*drift.Profile, error) {
	md, _ := serving.MetadataOf(model)
	b, err := drift.NewProfileBuilder(md.Name, md.Version, drift.FeaturesOf(md))
	if err != nil {
		return nil, err
	}
	const chunk = 1000
	for lo := 0; lo < len(a.id); lo += chunk {
		hi := min(lo+chunk, len(a.id))
		part := applications{a.id[lo:hi], a.age[lo:hi], a.income[lo:hi], a.nLoans[lo:hi], a.purpose[lo:hi]}
		req := part.request()
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

// realTime sends one application each way the server takes it.
func (s *summary) realTime(ctx context.Context, cl *client, w io.Writer) error {
	var err error
	fmt.Fprintln(w, "\nreal time, V2 with one input per column:")
	if s.v2, err = cl.post(ctx, "/v2/models/loanrisk/infer", v2Body(applicant, "")); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace(s.v2))
	fmt.Fprintln(w, "KServe V1, an instance as an object of columns:")
	v1, _ := json.Marshal(map[string]any{"instances": []map[string]any{applicant}})
	if s.v1, err = cl.post(ctx, "/v1/models/loanrisk:predict", v1); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace(s.v1))
	fmt.Fprintln(w, "Triton's classification extension, top 2 of output_probability:")
	if s.classes, err = cl.post(ctx, "/v2/models/loanrisk/infer", v2Body(applicant, "output_probability")); err != nil {
		return err
	}
	fmt.Fprintln(w, strings.TrimSpace(s.classes))
	return nil
}

// promotion serves the usual traffic for two windows, then the car-loan
// promotion until the monitor raises its alarm.
func (s *summary) promotion(ctx context.Context, cl *client, mon *drift.Monitor, r *rand.Rand, o *options, w io.Writer) error {
	next := 1 << 20 // ids of live applications
	send := func(m mix, rows int) error {
		for sent := 0; sent < rows; sent += o.batch {
			a := generate(r, o.batch, next, m)
			next += o.batch
			if _, err := cl.post(ctx, "/v2/models/loanrisk/infer", v2Batch(a)); err != nil {
				return err
			}
		}
		return mon.Flush(ctx)
	}
	if err := send(usual, 2*o.window); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nusual traffic, %d rows: alarm %v\n", 2*o.window, mon.Status("loanrisk", "1").Alarmed)
	for range 6 {
		if err := send(carBoom, o.window); err != nil {
			return err
		}
		if st := mon.Status("loanrisk", "1"); st.Alarmed {
			s.alarmed, s.reason = st.Features, st.Reason
			break
		}
	}
	fmt.Fprintf(w, "car-loan promotion: drift on %v\n  %s\n", s.alarmed, s.reason)
	return nil
}

func serveUntil(ctx context.Context, addr string, h http.Handler, w io.Writer) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Fprintf(w, "\nserving on http://%s (POST /v2/models/loanrisk/infer, /v1/models/loanrisk:predict; GET /drift)\n", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func specs(s []serving.TensorSpec) string {
	var b strings.Builder
	for i, t := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %v%v", t.Name, t.DataType, t.Shape)
		if len(t.Labels) > 0 {
			fmt.Fprintf(&b, " labels %q", t.Labels)
		}
	}
	return b.String()
}

func profiled(f drift.FeatureProfile) string {
	if f.Kind == drift.Categorical {
		cats := slices.Clone(f.Categories)
		return fmt.Sprintf("categories %q", cats)
	}
	return fmt.Sprintf("mean %.1f, %d missing", f.Mean, f.Missing)
}
