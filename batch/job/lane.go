package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/servekit/servekit/rowio"
)

// A lane is one reader and one writer with the parts they own: part p
// of this shard belongs to lane (p / shard count) mod lanes. One writer
// handled every part's batches serially, and encoding the output (about
// 50-80 ns a row in Parquet) bound the job to one core for writing while
// the other idled part of the time: a job on the fraud model kept 1.4 of
// 2 cores busy. A second writer fed by the same reader would not help:
// the window of batches in flight (which bounds memory) fills with the
// one part being written, so the reader cannot reach the next part
// before the writer nearly finishes. Each lane therefore reads its own
// parts with its own reader, skipping the others' as shards do (Parquet
// seeks; text inputs scan their lines, so they keep one lane), and
// writes them with its own writer, while the workers are shared. The
// lanes write different parts at once, so encoding spreads over the
// cores; order within a part is kept by the lane, and parts are separate
// files.
type lane struct {
	j       *run
	idx     int
	r       rowio.Reader
	sem     chan struct{} // a token per batch read and not yet written: bounds memory
	results chan *item    // scored batches and the reader's markers
	parts   map[int64]*partState
	bufs    []*bufio.Writer // of finished parts, for the next
}

// maxLanes bounds the lanes, each an open input and an open part: the
// gain was measured on two cores only.
const maxLanes = 4

// laneCount is how many lanes a job over rows input rows has: one per
// worker up to maxLanes, for Parquet input (see lane), and never more
// than the shard has parts. A lane without a part would only take its
// share of the window from the lanes that have one: a job of one part
// (64k rows by default) read with 4 batches in flight where one lane had
// 2 × workers + 2, too few to keep two workers busy when the reader and
// writer wait for a core (measured on the wide MLP job at load 7 on two
// cores: workers idle 5–20 % of the job waiting for a batch).
func laneCount(c config, rows int64) int {
	if c.inFormat != rowio.Parquet {
		return 1
	}
	parts := (rows + c.partRows - 1) / c.partRows
	mine := (parts - int64(c.shard) + int64(c.count) - 1) / int64(c.count) // parts p < parts with p mod count = shard
	return int(max(1, min(int64(c.workers), maxLanes, mine)))
}

// laneWindow is the batches in flight in each of n lanes: about the
// 2*workers+2 one lane had, shared out, and at least 4 so that a lane
// keeps its workers busy.
func laneWindow(workers, n int) int {
	return max(4, (2*workers+2+n-1)/n)
}

func (l *lane) owns(part int64) bool {
	c := l.j.cfg
	return part%int64(c.count) == int64(c.shard) && (part/int64(c.count))%int64(len(l.j.lanes)) == int64(l.idx)
}

// position records the input read; lane 0's reader stands for all (the
// lanes read the same file, a window apart).
func (l *lane) position() {
	if l.idx == 0 {
		l.j.tr.position(l.r)
	}
}

// read cuts the input into parts of PartRows rows and the lane's parts
// into batches, skipping the other lanes' and shards' parts and parts
// committed already.
func (l *lane) read(ctx context.Context, work chan<- *item) error {
	j := l.j
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
		if !l.owns(part) || j.doneBefore[part] {
			k, err := l.r.Skip(rows)
			if err != nil {
				return err
			}
			l.position()
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
			err := l.r.Read(f, int(min(int64(j.cfg.batchRows), rows-read)))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			read += int64(f.Rows)
			l.position()
			select {
			case l.sem <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if err := send(work, &item{lane: l, seq: seq, part: part, in: f}); err != nil {
				return err
			}
			seq++
			batches++
		}
		if batches > 0 {
			if err := send(l.results, &item{lane: l, seq: seq, part: part, end: true, batches: batches, start: start, stop: start + read}); err != nil {
				return err
			}
			seq++
		}
		if read < rows {
			break
		}
	}
	return send(l.results, &item{lane: l, seq: seq, eof: true})
}

// write hands the lane's items to their parts in input order (or as
// they come, when not ordered) and passes each part to the committer
// once its last batch is in. Parts left open when it returns (after a
// failure) are aborted.
func (l *lane) write(ctx context.Context, commits chan<- *partState) error {
	defer func() {
		for _, st := range l.parts {
			st.abort()
		}
	}()
	pending := map[int64]*item{}
	var next, handled int64
	total := int64(-1)
	for total < 0 || handled < total {
		var it *item
		select {
		case it = <-l.results:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if it.eof {
			total = it.seq
			continue
		}
		if !l.j.cfg.ordered {
			handled++
			if err := l.handle(ctx, it, commits); err != nil {
				return err
			}
			continue
		}
		pending[it.seq] = it
		for it, ok := pending[next]; ok; it, ok = pending[next] {
			delete(pending, next)
			next++
			handled++
			if err := l.handle(ctx, it, commits); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *lane) handle(ctx context.Context, it *item, commits chan<- *partState) error {
	st := l.part(it.part)
	if it.end {
		st.batches, st.start, st.stop = it.batches, it.start, it.stop
	} else {
		<-l.sem
		st.got++
		if err := l.add(st, it); err != nil {
			return err
		}
	}
	if st.batches == 0 || st.got < st.batches {
		return nil
	}
	delete(l.parts, st.part)
	if err := st.finish(l); err != nil {
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

// add writes a scored batch into its part and counts it. The counts,
// the output statistics and the first failure are the job's, shared by
// the lanes under j.mu.
func (l *lane) add(st *partState, it *item) error {
	j := l.j
	var ok int64
	for _, out := range it.outs {
		if err := st.write(l, out); err != nil {
			return err
		}
		ok += int64(out.Len())
	}
	for i := range it.dead {
		if err := st.writeDead(j, &it.dead[i]); err != nil {
			return err
		}
	}
	j.mu.Lock()
	for _, out := range it.outs {
		j.stats.add(out)
	}
	for i := range it.dead { // the lowest row failed so far, whichever lane wrote it
		if j.firstErr == nil || it.dead[i].Row < j.firstErr.Row {
			first := it.dead[i]
			j.firstErr = &first
		}
	}
	okRows := j.tr.ok.Add(ok)
	failed := j.tr.failed.Add(int64(len(it.dead)))
	firstErr := j.firstErr
	j.mu.Unlock()
	for _, out := range it.outs {
		j.recycleInts(out)
	}
	j.recycle(it.in)
	rows := j.prevRows + j.prevErrs + okRows + failed
	errs := j.prevErrs + failed
	if rows >= j.cfg.minRows && float64(errs) > j.cfg.maxErrRate*float64(rows) {
		first := "in an earlier run"
		if firstErr != nil {
			first = fmt.Sprintf("row %d: %s", firstErr.Row, firstErr.Err)
		}
		return fmt.Errorf("%w: %d of %d rows failed (%.2f%%), more than the %.2f%% allowed; first: %s (dead letters in %s)",
			ErrTooManyErrors, errs, rows, 100*float64(errs)/float64(rows), 100*j.cfg.maxErrRate, first, j.dir)
	}
	return nil
}
