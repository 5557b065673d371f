package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	r, err := rowio.Open(input, c.inFormat, m.Fields())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	j := &run{cfg: c, p: p, md: md, m: m, r: r, dir: dir, man: man, parts: map[int64]*partState{},
		frames: make(chan *rowio.Frame, 2*c.workers+2), ints: make(chan []int64, 4*c.workers+4), shared: sharedColumns(c.schema, md)}
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

// run is one call of Run. The reader goroutine owns r, the worker
// goroutines only their items, the writer (Run's goroutine) parts and
// stats, the committer goroutine man (until it is done) and the parts
// handed to it; tr is shared through atomics.
type run struct {
	cfg   config
	p     serving.Predictor
	md    serving.Metadata
	m     *rowio.Mapping
	r     rowio.Reader
	dir   string
	man   *Manifest
	parts map[int64]*partState
	stats stats
	tr    tracker

	texts              constTexts
	bufs               []*bufio.Writer   // of finished parts, for the next: the writer's
	ints               chan []int64      // row number and timestamp columns written, for output to fill again
	frames             chan *rowio.Frame // written input frames, for the reader to fill again
	shared             map[string]bool   // columns never filled again (see recycle)
	prevRows, prevErrs int64             // from earlier runs
	doneBefore         map[int64]bool    // parts earlier runs committed: the reader's copy
	firstErr           *deadRow
}

// item travels from the reader through a worker to the writer: a batch
// of input rows, the marker that ends a part, or the end of the input.
type item struct {
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
	window := 2*j.cfg.workers + 2 // batches between reader and writer: bounds memory
	sem := make(chan struct{}, window)
	work := make(chan *item, j.cfg.workers)
	results := make(chan *item, window+4)
	commits := make(chan *partState, maxQueuedParts)

	j.tr.begin = time.Now()
	stopTelemetry := j.startTelemetry()
	stopProgress := j.startProgress()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := j.read(ctx, work, results, sem); err != nil {
			cancel(err)
		}
	})
	for range j.cfg.workers {
		wg.Go(func() {
			if err := j.work(ctx, work, results); err != nil {
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
	err := j.write(ctx, results, sem, commits)
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
	for _, st := range j.parts {
		st.abort()
	}
	if err == nil && !complete { // no part was left to commit: say so
		j.man.Complete = true
		err = j.man.save(j.dir)
	}
	stopProgress(err)
	stopTelemetry()
	return j.summary(), err
}

// read cuts the input into parts of PartRows rows and the parts of this
// shard into batches, skipping parts committed already.
func (j *run) read(ctx context.Context, work chan<- *item, results chan<- *item, sem chan struct{}) error {
	defer close(work)
	send := func(ch chan<- *item, it *item) error {
		select {
		case ch <- it:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	var seq int64
	rows := j.cfg.partRows
	for part := int64(0); ; part++ {
		start := part * rows
		if part%int64(j.cfg.count) != int64(j.cfg.shard) || j.doneBefore[part] {
			k, err := j.r.Skip(rows)
			if err != nil {
				return err
			}
			j.tr.position(j.r)
			if k < rows {
				break
			}
			continue
		}
		read, batches := int64(0), 0
		for read < rows {
			var f *rowio.Frame
			select {
			case f = <-j.frames:
			default:
				f = new(rowio.Frame)
			}
			err := j.r.Read(f, int(min(int64(j.cfg.batchRows), rows-read)))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			read += int64(f.Rows)
			j.tr.position(j.r)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if err := send(work, &item{seq: seq, part: part, in: f}); err != nil {
				return err
			}
			seq++
			batches++
		}
		if batches > 0 {
			if err := send(results, &item{seq: seq, part: part, end: true, batches: batches, start: start, stop: start + read}); err != nil {
				return err
			}
			seq++
		}
		if read < rows {
			break
		}
	}
	return send(results, &item{seq: seq, eof: true})
}

func (j *run) work(ctx context.Context, work <-chan *item, results chan<- *item) error {
	for it := range work {
		if err := j.score(ctx, it); err != nil {
			return err
		}
		select {
		case results <- it:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// write hands items to the parts in input order (or as they come, when
// not ordered) and passes each part to the committer once its last
// batch is in.
func (j *run) write(ctx context.Context, results <-chan *item, sem chan struct{}, commits chan<- *partState) error {
	pending := map[int64]*item{}
	var next, handled int64
	total := int64(-1)
	for total < 0 || handled < total {
		var it *item
		select {
		case it = <-results:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if it.eof {
			total = it.seq
			continue
		}
		if !j.cfg.ordered {
			handled++
			if err := j.handle(ctx, it, sem, commits); err != nil {
				return err
			}
			continue
		}
		pending[it.seq] = it
		for it, ok := pending[next]; ok; it, ok = pending[next] {
			delete(pending, next)
			next++
			handled++
			if err := j.handle(ctx, it, sem, commits); err != nil {
				return err
			}
		}
	}
	return nil
}

func (j *run) handle(ctx context.Context, it *item, sem chan struct{}, commits chan<- *partState) error {
	st := j.part(it.part)
	if it.end {
		st.batches, st.start, st.stop = it.batches, it.start, it.stop
	} else {
		<-sem
		st.got++
		if err := j.add(st, it); err != nil {
			return err
		}
	}
	if st.batches == 0 || st.got < st.batches {
		return nil
	}
	delete(j.parts, st.part)
	if err := st.finish(j); err != nil {
		st.abort()
		return err
	}
	select {
	case commits <- st:
		return nil
	case <-ctx.Done():
		st.abort()
		return context.Cause(ctx)
	}
}

// add writes a scored batch into its part and counts it.
func (j *run) add(st *partState, it *item) error {
	for _, out := range it.outs {
		if err := st.write(j, out); err != nil {
			return err
		}
		j.stats.add(out)
		j.tr.ok.Add(int64(out.Len()))
		j.recycleInts(out)
	}
	j.recycle(it.in)
	for i := range it.dead {
		if err := st.writeDead(j, &it.dead[i]); err != nil {
			return err
		}
		if j.firstErr == nil {
			j.firstErr = &it.dead[i]
		}
	}
	j.tr.failed.Add(int64(len(it.dead)))
	rows := j.prevRows + j.prevErrs + j.tr.ok.Load() + j.tr.failed.Load()
	errs := j.prevErrs + j.tr.failed.Load()
	if rows >= j.cfg.minRows && float64(errs) > j.cfg.maxErrRate*float64(rows) {
		return fmt.Errorf("%w: %d of %d rows failed (%.2f%%), more than the %.2f%% allowed; first: row %d: %s (dead letters in %s)",
			ErrTooManyErrors, errs, rows, 100*float64(errs)/float64(rows), 100*j.cfg.maxErrRate, j.firstErr.Row, j.firstErr.Err, j.dir)
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
