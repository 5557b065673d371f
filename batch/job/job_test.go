package job_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	goleak.VerifyTestMain(m)
}

var formats = []rowio.Format{rowio.JSONL, rowio.CSV, rowio.Parquet}

func TestEveryFormat(t *testing.T) {
	const n = 2345
	for _, in := range formats {
		for _, out := range formats {
			t.Run(in.String()+"-to-"+out.String(), func(t *testing.T) {
				dir := t.TempDir()
				input := writeInput(t, dir, in, n)
				s, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, "out"),
					job.WithSchema(schema), job.WithOutputFormat(out), job.WithBatchRows(100), job.WithPartRows(1000), job.WithWorkers(3))
				if err != nil {
					t.Fatal(err)
				}
				if s.Rows != n || s.Errors != 0 || s.Parts != 3 || !s.Complete {
					t.Errorf("summary: %+v", s)
				}
				got := readOutput(t, filepath.Join(dir, "out"), out)
				got.exactlyOnce(t, n)
				if got.parts != 3 || got.model != "linear" {
					t.Errorf("%d parts, model %q", got.parts, got.model)
				}
			})
		}
	}
}

func TestInputOrder(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		dir := t.TempDir()
		input := writeInput(t, dir, rowio.Parquet, 3000)
		if _, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, "out"), job.WithSchema(schema),
			job.WithOutputFormat(rowio.JSONL), job.WithBatchRows(7), job.WithWorkers(4), job.WithOrdered(ordered)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "out", job.PartFile(0, rowio.JSONL)))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		inOrder := true
		for i, l := range lines {
			if !strings.HasPrefix(l, `{"row":`+itoa(i)+`,`) {
				inOrder = false
			}
		}
		if ordered && !inOrder {
			t.Errorf("ordered output is out of order")
		}
		if len(lines) != 3000 {
			t.Errorf("ordered=%v: %d lines", ordered, len(lines))
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestDeadLetters(t *testing.T) {
	for _, format := range []rowio.Format{rowio.JSONL, rowio.CSV} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			input := writeInput(t, dir, format, 500, 3, 250, 499)
			// The model refuses rows whose a is 100: the batch fails, and each of its
			// rows is tried alone to find the culprit.
			lin := servingtest.Linear(2)
			picky := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
				x, _ := serving.Values[float32](req.Inputs[0])
				for i := 0; i < len(x); i += 2 {
					if x[i] == 100 {
						return nil, serving.Errorf(serving.InvalidArgument, "a = 100 is not allowed")
					}
				}
				return lin.Predict(ctx, req)
			}).WithMetadata(lin.Metadata())
			s, err := job.Run(context.Background(), picky, input, filepath.Join(dir, "out"), job.WithSchema(schema),
				job.WithBatchRows(32), job.WithMaxErrorRate(0.05, 10))
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != 496 || s.Errors != 4 {
				t.Errorf("summary %d rows, %d errors; want 496, 4", s.Rows, s.Errors)
			}
			readOutput(t, filepath.Join(dir, "out"), rowio.Parquet).exactlyOnce(t, 500, 3, 100, 250, 499)
			b, _ := os.ReadFile(filepath.Join(dir, "out", job.DeadLetterFile(0)))
			for _, want := range []string{`"row":3,"line":`, `"stage":"decode"`, `"raw":`, `"row":100,"stage":"predict","error":"a = 100 is not allowed","input":{"a":100,"b":-100,"id":"id-100"}`} {
				if !strings.Contains(string(b), want) {
					t.Errorf("dead letters lack %s:\n%s", want, b)
				}
			}
		})
	}
}

func TestErrorRateStopsTheJob(t *testing.T) {
	dir := t.TempDir()
	bad := []int{}
	for i := 0; i < 2000; i += 10 {
		bad = append(bad, i) // 10 %
	}
	input := writeInput(t, dir, rowio.JSONL, 2000, bad...)
	s, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, "out"), job.WithSchema(schema),
		job.WithMaxErrorRate(0.05, 500), job.WithPartRows(200))
	if !errors.Is(err, job.ErrTooManyErrors) {
		t.Fatalf("err = %v, want ErrTooManyErrors", err)
	}
	for _, want := range []string{"more than the 5.00% allowed", "first: row 0", "not a number"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if s == nil || s.Complete || s.Rows+s.Errors < 500 || s.Rows+s.Errors > 1000 {
		t.Errorf("summary %+v: want a stop soon after 500 rows", s)
	}
	// Raising the bound lets the job finish what the first run left.
	if _, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, "out"), job.WithSchema(schema),
		job.WithMaxErrorRate(0.2, 500), job.WithPartRows(200)); err != nil {
		t.Fatal(err)
	}
	dead := make([]int64, len(bad))
	for i, r := range bad {
		dead[i] = int64(r)
	}
	readOutput(t, filepath.Join(dir, "out"), rowio.Parquet).exactlyOnce(t, 2000, dead...)
}

func TestShards(t *testing.T) {
	const n, count = 10_000, 4
	for _, format := range formats {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			input := writeInput(t, dir, format, n)
			out := filepath.Join(dir, "out")
			for i := range count {
				s, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema),
					job.WithShard(i, count), job.WithPartRows(999))
				if err != nil {
					t.Fatal(err)
				}
				if want := filepath.Join(out, "shard-0000"+itoa(i)+"-of-00004"); s.Dir != want {
					t.Errorf("shard dir %s, want %s", s.Dir, want)
				}
			}
			readOutput(t, out, rowio.Parquet).exactlyOnce(t, n)
		})
	}
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.CSV, 1000)
	out := filepath.Join(dir, "out")
	if _, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema), job.WithPartRows(100)); err != nil {
		t.Fatal(err)
	}
	s, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema), job.WithPartRows(100))
	if err != nil || s.Rows != 0 || s.SkippedParts != 10 || !s.Complete {
		t.Errorf("second run of a finished job: %+v, %v", s, err)
	}
	if _, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema), job.WithPartRows(50)); err == nil || !strings.Contains(err.Error(), "another job") {
		t.Errorf("other part rows: %v, want a refusal", err)
	}
	if _, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema), job.WithPartRows(100), job.WithResume(false)); err == nil {
		t.Error("WithResume(false) on a job's output: no error")
	}
	m, err := job.ReadManifest(out)
	if err != nil || len(m.Parts) != 10 || m.Parts[9].Start != 900 || m.Parts[9].End != 1000 {
		t.Errorf("manifest %+v, %v", m, err)
	}
}

func TestBadSetup(t *testing.T) {
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.CSV, 10)
	cases := map[string][]job.Option{
		"column":  {job.WithSchema(rowio.Schema{Inputs: []rowio.Input{{Name: "x", Columns: []string{"a", "nope"}}}})},
		"input":   {job.WithSchema(rowio.Schema{Inputs: []rowio.Input{{Name: "zz", Columns: []string{"a", "b"}}}})},
		"shard":   {job.WithSchema(schema), job.WithShard(4, 4)},
		"batch":   {job.WithSchema(schema), job.WithBatchRows(0)},
		"default": nil, // the default schema wants a column x
	}
	for name, opts := range cases {
		if _, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, name), opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := job.Run(context.Background(), slowLinear(0), filepath.Join(dir, "missing.csv"), dir); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("missing input: %v", err)
	}
}

func TestModelDownStopsTheJob(t *testing.T) {
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.CSV, 100)
	closed := slowLinear(0)
	serving.Close(closed)
	_, err := job.Run(context.Background(), closed, input, filepath.Join(dir, "out"), job.WithSchema(schema))
	if !errors.Is(err, serving.ErrClosed) {
		t.Errorf("closed model: %v, want ErrClosed after the retries", err)
	}
}

// TestSummaryDistribution checks the summary of an output against what
// it must be: y = (2r+1, -2r+1) over rows r < n is spread evenly over
// [3-2n, 2n-1], so its range and mean are exact and its quantiles and
// histogram, from the sample, close to the uniform's. A sample that
// favoured early rows (most of them never replaced) would put P90 near
// the start.
func TestSummaryDistribution(t *testing.T) {
	const n = 30000
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.Parquet, n)
	s, err := job.Run(context.Background(), slowLinear(0), input, filepath.Join(dir, "out"),
		job.WithSchema(schema), job.WithBatchRows(512), job.WithWorkers(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Outputs) != 1 {
		t.Fatalf("outputs %+v", s.Outputs)
	}
	o := s.Outputs[0]
	span := 4.0 * (n - 1)
	if o.Name != "y" || o.Count != 2*n || o.Min != 3-2*n || o.Max != 2*n-1 || math.Abs(o.Mean-1) > 1e-9 || o.Classes != nil {
		t.Fatalf("summary %+v", o)
	}
	for _, q := range []struct{ got, p float64 }{{o.P50, 0.5}, {o.P90, 0.9}, {o.P99, 0.99}} {
		if want := o.Min + q.p*span; math.Abs(q.got-want) > 0.02*span {
			t.Errorf("P%v = %v, want about %v", 100*q.p, q.got, want)
		}
	}
	var sum int64
	for _, b := range o.Histogram {
		sum += b.Count
		if math.Abs(float64(b.Count)-2*n/10) > 0.1*2*n/10 {
			t.Errorf("bin %+v, want about %d values", b, 2*n/10)
		}
	}
	if math.Abs(float64(sum-2*n)) > 10 {
		t.Errorf("histogram holds %d values of %d", sum, 2*n)
	}
}

func TestProgressAndMetrics(t *testing.T) {
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.Parquet, 3000)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	var progress bytes.Buffer
	lin := slowLinear(0)
	observed := make(chan metricdata.ResourceMetrics, 1)
	p := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		if x, _ := serving.Values[float32](req.Inputs[0]); x[0] == 1500 { // mid-job
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err == nil {
				observed <- rm
			}
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(serving.Metadata{Name: "linear", Inputs: []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, 2}}}})
	s, err := job.Run(context.Background(), p, input, filepath.Join(dir, "out"), job.WithSchema(schema), job.WithBatchRows(10),
		job.WithWorkers(1), job.WithProgress(&progress, time.Millisecond), job.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	last := progress.String()[strings.LastIndex(strings.TrimSpace(progress.String()), "\n")+1:]
	if !strings.HasPrefix(last, "job: 100.0% read, 3000 rows, 0 failed,") || !strings.Contains(last, "rows/s, ETA") {
		t.Errorf("last progress line %q", last)
	}
	rm := <-observed
	var names []string
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != job.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
			if m.Name == "servekit.job.rows" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					if o, _ := dp.Attributes.Value(attribute.Key("outcome")); o.AsString() == "ok" && dp.Value == 0 {
						t.Errorf("rows ok = 0 mid-job")
					}
				}
			}
		}
	}
	if strings.Join(names, ",") != "servekit.job.rows,servekit.job.parts,servekit.job.progress,servekit.job.rate,servekit.job.eta" {
		t.Errorf("metrics mid-job: %v", names)
	}
	text := s.String()
	for _, want := range []string{"3000 rows scored, 0 failed", "output y: n=6000 min=-5997 mean=1 max=5999", "[", "#"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestBrokenPredictorNeverCrashesTheJob(t *testing.T) {
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.JSONL, 20)
	broken := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, nil }).
		WithMetadata(servingtest.Linear(2).Metadata())
	s, err := job.Run(context.Background(), broken, input, filepath.Join(dir, "out"), job.WithSchema(schema), job.WithMaxErrorRate(1, 0))
	if err != nil || s.Errors != 20 {
		t.Fatalf("%v, %+v", err, s)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out", job.DeadLetterFile(0)))
	if !strings.Contains(string(b), "neither an answer nor an error") {
		t.Errorf("dead letters:\n%s", b)
	}
}
