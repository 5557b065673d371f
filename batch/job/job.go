package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/retry"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// ErrTooManyErrors is wrapped by the error Run returns when the share of
// failed rows passed WithMaxErrorRate.
var ErrTooManyErrors = errors.New("batch/job: too many failed rows")

// Names of the columns Run writes besides the keys and the outputs.
const (
	ColRow       = "row"           // the input row number, from 0
	ColModel     = "model"         // Response.Model, else the metadata's name
	ColVersion   = "model_version" // Response.Version: the version that answered
	ColTimestamp = "timestamp"     // when the row's batch was answered (UTC, µs)
)

// Run scores every row of the file input with p and writes the answers
// under the directory output (see the package doc for the layout),
// resuming the job it finds there. It returns when the input is done,
// ctx ends, the error rate passes its bound or something fails for good;
// parts committed before an error stay, and running Run again continues
// from them. The Summary covers this run and is returned with an error
// too, when one was started.
func Run(ctx context.Context, p serving.Predictor, input, output string, opts ...Option) (*Summary, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	md, _ := serving.MetadataOf(p)
	m, err := c.schema.Bind(md)
	if err != nil {
		return nil, err
	}
	if c.inFormat == 0 {
		if c.inFormat, err = rowio.FormatOf(input); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(input)
	if err != nil {
		return nil, serving.NewError(serving.NotFound, fmt.Errorf("batch/job: input: %w", err))
	}
	dir := output
	if c.count > 1 {
		dir = filepath.Join(output, fmt.Sprintf("shard-%05d-of-%05d", c.shard, c.count))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := atomicfile.RemoveTemp(dir); err != nil {
		return nil, err
	}
	man, err := openManifest(dir, &Manifest{
		Version: manifestVersion, Input: filepath.Base(input), InputSize: st.Size(),
		InputFormat: c.inFormat.String(), OutputFormat: c.outFormat.String(),
		PartRows: c.partRows, ShardIndex: c.shard, ShardCount: c.count,
	}, c.resume)
	if err != nil {
		return nil, err
	}
	first, err := rowio.Open(input, c.inFormat, m.Fields())
	if err != nil {
		return nil, err
	}
	defer first.Close()
	_, rows := first.Progress() // Parquet's row count (text inputs have one lane)
	n := laneCount(c, rows)
	window := laneWindow(c.workers, n)
	j := &run{cfg: c, p: p, md: md, m: m, dir: dir, man: man,
		frames: make(chan *rowio.Frame, n*window), ints: make(chan []int64, 2*n*window)}
	for i := range n {
		r := first
		if i > 0 {
			if r, err = rowio.Open(input, c.inFormat, m.Fields()); err != nil {
				return nil, err
			}
			defer r.Close()
		}
		j.lanes = append(j.lanes, &lane{j: j, idx: i, r: r, sem: make(chan struct{}, window),
			results: make(chan *item, window+4), parts: map[int64]*partState{}})
	}
	j.prevRows, j.prevErrs = man.Totals()
	j.doneBefore = map[int64]bool{}
	for _, p := range man.Parts {
		j.doneBefore[p.Part] = true
	}
	j.stats.skip = map[string]bool{ColRow: true, ColModel: true, ColVersion: true, ColTimestamp: true}
	for _, k := range m.KeyFields() {
		j.stats.skip[k.Name] = true
	}
	return j.run(ctx)
}

// run is one call of Run. Each lane's reader goroutine owns its
// reader, the worker goroutines only their items, each lane's writer
// (lane 0's on Run's goroutine) its parts, the committer goroutine man
// (until it is done) and the parts handed to it; stats and firstErr are
// guarded by mu, tr is shared through atomics.
type run struct {
	cfg   config
	p     serving.Predictor
	md    serving.Metadata
	m     *rowio.Mapping
	dir   string
	man   *Manifest
	lanes []*lane
	tr    tracker

	mu       sync.Mutex
	stats    stats    // guarded by mu
	firstErr *deadRow // guarded by mu

	texts              constTexts
	ints               chan []int64      // row number and timestamp columns written, for output to fill again
	frames             chan *rowio.Frame // written input frames, for the reader to fill again
	prevRows, prevErrs int64             // from earlier runs
	doneBefore         map[int64]bool    // parts earlier runs committed: read only
}

// item travels from the reader through a worker to the writer: a batch
// of input rows, the marker that ends a part, or the end of the input.
type item struct {
	lane *lane
	seq  int64
	part int64
	in   *rowio.Frame // a batch
	// set by a worker
	outs []*rowio.Frame
	dead []deadRow
	// a part's end marker
	end         bool
	batches     int
	start, stop int64
	eof         bool
}

func (j *run) run(ctx context.Context) (*Summary, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *item, j.cfg.workers)
	commits := make(chan *partState, maxQueuedParts)

	j.tr.begin = time.Now()
	stopTelemetry := j.startTelemetry()
	stopProgress := j.startProgress()

	var wg, readers, writers sync.WaitGroup
	for _, l := range j.lanes {
		readers.Go(func() {
			if err := l.read(ctx, work); err != nil {
				cancel(err)
			}
		})
	}
	wg.Go(func() {
		readers.Wait()
		close(work)
	})
	for range j.cfg.workers {
		wg.Go(func() {
			if err := j.work(ctx, work); err != nil {
				cancel(err)
			}
		})
	}
	var commitErr error
	var succeeded atomic.Bool
	complete := false
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		complete = j.commitLoop(commits, &succeeded, func(err error) {
			commitErr = err
			cancel(err)
		})
	}()
	var failed atomic.Bool
	for _, l := range j.lanes[1:] {
		writers.Go(func() {
			if err := l.write(ctx, commits); err != nil {
				failed.Store(true)
				cancel(err)
			}
		})
	}
	err := j.lanes[0].write(ctx, commits)
	if err != nil {
		cancel(err)
	}
	writers.Wait()
	if err == nil && failed.Load() {
		err = context.Cause(ctx) // the first failure, whoever had it
	}
	if err == nil {
		succeeded.Store(true)
	}
	close(commits)
	<-committed
	if err == nil {
		err = commitErr
	}
	cancel(err)
	wg.Wait()
	if err == nil && !complete { // no part was left to commit: say so
		j.man.Complete = true
		err = j.man.save(j.dir)
	}
	stopProgress(err)
	stopTelemetry()
	return j.summary(), err
}

func (j *run) work(ctx context.Context, work <-chan *item) error {
	for it := range work {
		if err := j.score(ctx, it); err != nil {
			return err
		}
		select {
		case it.lane.results <- it:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// score predicts a batch. A failure that may be one row's fault is
// narrowed down by predicting each row alone; the rows that still fail
// become dead letters. Other failures (the model closed or overloaded
// beyond the retries, ctx ended) end the job.
func (j *run) score(ctx context.Context, it *item) error {
	f := it.in
	for _, b := range f.Bad {
		it.dead = append(it.dead, deadRow{Row: b.Row, Line: b.Line, Stage: "decode", Err: b.Err.Error(), Raw: string(b.Raw)})
	}
	if f.Len() == 0 {
		return nil
	}
	out, err := j.predict(ctx, f)
	if err == nil {
		it.outs = append(it.outs, out)
		return nil
	}
	if !rowFault(ctx, err) {
		return err
	}
	for i := range f.Len() {
		one := f.Slice(i, i+1)
		out, err := j.predict(ctx, one)
		switch {
		case err == nil:
			it.outs = append(it.outs, out)
		case rowFault(ctx, err):
			it.dead = append(it.dead, deadRow{Row: one.RowNumber(0), Stage: "predict", Err: err.Error(), Input: renderRow(one)})
		default:
			return err
		}
	}
	return nil
}

// Retries of a batch that failed with a transient code (Unavailable,
// ResourceExhausted, DeadlineExceeded), through the module's retry policy:
// doubling backoff with jitter from retryBackoff, or the error's
// RetryAfter, up to maxBackoff.
const (
	maxRetries   = 3
	retryBackoff = 100 * time.Millisecond
	maxBackoff   = 10 * time.Second
)

var retryPolicy = retry.Policy{Retries: maxRetries, Base: retryBackoff, Max: maxBackoff}

func (j *run) predict(ctx context.Context, f *rowio.Frame) (*rowio.Frame, error) {
	req, err := j.m.Request(f)
	if err != nil {
		return nil, err
	}
	var resp *serving.Response
	err = retryPolicy.Do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = j.p.Predict(ctx, req)
		switch {
		case err == nil && resp == nil:
			return retry.Permanent(serving.Errorf(serving.Internal, "batch/job: the predictor returned neither an answer nor an error"))
		case err == nil:
			return nil
		case !transient(err):
			return retry.Permanent(err)
		}
		return retry.After(err, serving.RetryAfterOf(err))
	})
	if err != nil {
		return nil, err
	}
	return j.output(f, resp)
}

func transient(err error) bool {
	switch serving.CodeOf(err) {
	case serving.Unavailable, serving.ResourceExhausted, serving.DeadlineExceeded:
		return true
	}
	return false
}

// fatal marks an error that is nobody's row: the job stops.
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

func rowFault(ctx context.Context, err error) bool {
	var fe fatal
	return ctx.Err() == nil && !errors.As(err, &fe) && !transient(err) && serving.CodeOf(err) != serving.Canceled
}
