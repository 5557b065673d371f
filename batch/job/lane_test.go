package job_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// firstRow is the a column (= the row number in writeInput's data) of a
// request's first row.
func firstRow(req *serving.Request) int {
	x, _ := serving.Values[float32](req.Inputs[0])
	return int(x[0])
}

// A Parquet job with two workers has two lanes: parts 0, 2, … are read
// and written by one, parts 1, 3, … by the other. Part 0's first batch
// is held until a batch of part 1 is scored: with one reader, that never
// happens (part 0 has more batches than the window holds, and the
// window stays full behind the held batch), so the test shows two parts
// in flight at once. The output is still each row once, in input order
// within every part.
func TestLanesWriteSeveralPartsAtOnce(t *testing.T) {
	const n, partRows = 4000, 1000
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.Parquet, n)
	lin := servingtest.Linear(2)
	part1 := make(chan struct{})
	var once sync.Once
	var neverMet bool
	p := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		switch r := firstRow(req); {
		case r == 0:
			select {
			case <-part1:
			case <-time.After(time.Minute): // a safety net, not a timing: fails the test below
				neverMet = true
			}
		case r/partRows == 1:
			once.Do(func() { close(part1) })
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(lin.Metadata())
	out := filepath.Join(dir, "out")
	s, err := job.Run(context.Background(), p, input, out, job.WithSchema(schema), job.WithOutputFormat(rowio.JSONL),
		job.WithBatchRows(10), job.WithPartRows(partRows), job.WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	if neverMet {
		t.Fatal("part 1 was not scored while part 0 waited: the parts were not in flight together")
	}
	if s.Rows != n || s.Parts != n/partRows || !s.Complete {
		t.Errorf("summary %+v", s)
	}
	readOutput(t, out, rowio.JSONL).exactlyOnce(t, n)
	for part := range n / partRows {
		b, err := os.ReadFile(filepath.Join(out, job.PartFile(int64(part), rowio.JSONL)))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if want := fmt.Sprintf(`{"row":%d,`, part*partRows+i); !strings.HasPrefix(l, want) {
				t.Fatalf("part %d line %d is %.20s…, want %s…: out of order", part, i, l, want)
			}
		}
	}
}

// A failure in one lane's writer (part 1's output changes type in its
// second batch, which its Parquet file cannot take) ends the job with
// that error, not with the cancellation the other lane sees; no part is
// left half written, and a run with a sound model finishes the job with
// every row once.
func TestFailureInOneLane(t *testing.T) {
	const n, partRows = 4000, 1000
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.Parquet, n)
	lin := servingtest.Linear(2)
	fickle := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		resp, err := lin.Predict(ctx, req)
		if r := firstRow(req); err != nil || r/partRows != 1 || r == partRows {
			return resp, err
		}
		y, _ := serving.Values[float32](resp.Outputs[0])
		y64 := make([]float64, len(y))
		for i, v := range y {
			y64[i] = float64(v)
		}
		wide, err := serving.FromSlice("y", serving.FP64, resp.Outputs[0].Shape, y64)
		if err != nil {
			return nil, err
		}
		resp.Outputs[0] = wide
		return resp, nil
	}).WithMetadata(lin.Metadata())
	out := filepath.Join(dir, "out")
	s, err := job.Run(context.Background(), fickle, input, out, job.WithSchema(schema),
		job.WithBatchRows(100), job.WithPartRows(partRows), job.WithWorkers(2))
	if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "y FP64") {
		t.Fatalf("err = %v, want the part writer's error about column y", err)
	}
	if s == nil || s.Complete {
		t.Errorf("summary %+v, want incomplete", s)
	}
	m, err := job.ReadManifest(out)
	if err == nil {
		for _, p := range m.Parts {
			if p.Part == 1 {
				t.Errorf("part 1 committed: %+v", p)
			}
		}
	}
	got := readOutput(t, out, rowio.Parquet) // no temporary file left
	for r, k := range got.rows {
		if k != 1 || r/partRows == 1 {
			t.Fatalf("row %d written %d times after the failed run", r, k)
		}
	}
	if _, err := job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema),
		job.WithBatchRows(100), job.WithPartRows(partRows), job.WithWorkers(2)); err != nil {
		t.Fatal(err)
	}
	readOutput(t, out, rowio.Parquet).exactlyOnce(t, n)
}

// Cancelling the job while both lanes hold open parts ends it with the
// cancellation, leaks no goroutine (TestMain's goleak) and no temporary
// file, and the next run finishes it with every row once.
func TestCancelWhileLanesWrite(t *testing.T) {
	const n, partRows = 6000, 1000
	dir := t.TempDir()
	input := writeInput(t, dir, rowio.Parquet, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lin := servingtest.Linear(2)
	p := servingtest.Func(func(c context.Context, req *serving.Request) (*serving.Response, error) {
		if firstRow(req) == 3*partRows+500 { // part 3, lane 1's second part, half scored
			cancel()
		}
		return lin.Predict(c, req)
	}).WithMetadata(lin.Metadata())
	out := filepath.Join(dir, "out")
	s, err := job.Run(ctx, p, input, out, job.WithSchema(schema), job.WithBatchRows(100),
		job.WithPartRows(partRows), job.WithWorkers(2))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s == nil || s.Complete {
		t.Errorf("summary %+v, want incomplete", s)
	}
	got := readOutput(t, out, rowio.Parquet) // no temporary file left
	for r, k := range got.rows {
		if k != 1 {
			t.Fatalf("row %d written %d times after the cancelled run", r, k)
		}
	}
	s, err = job.Run(context.Background(), slowLinear(0), input, out, job.WithSchema(schema), job.WithBatchRows(100),
		job.WithPartRows(partRows), job.WithWorkers(2))
	if err != nil || !s.Complete || s.Parts+s.SkippedParts != n/partRows {
		t.Fatalf("resumed run: %+v, %v", s, err)
	}
	readOutput(t, out, rowio.Parquet).exactlyOnce(t, n)
}
