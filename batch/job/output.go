package job

import (
	"sync"
	"time"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// output builds the output rows of f from resp: row numbers, keys,
// outputs (in the metadata's order, else the response's), model, version
// and timestamp. The first and last columns are the job's own, filled
// again once written (recycleInts).
func (j *run) output(f *rowio.Frame, resp *serving.Response) (*rowio.Frame, error) {
	n := f.Len()
	out := &rowio.Frame{Start: f.Start, Rows: n}
	rowNums := j.int64s(n)
	for i := range rowNums {
		rowNums[i] = f.RowNumber(i)
	}
	out.Cols = append(out.Cols, rowio.Col{Field: rowio.Field{Name: ColRow, Type: serving.Int64}, Data: rowNums})
	out.Cols = append(out.Cols, j.m.Keys(f)...)
	for _, t := range orderOutputs(j.md, resp.Outputs) {
		if len(t.Shape) == 0 || t.Shape[0] != int64(n) {
			return nil, serving.Errorf(serving.InvalidArgument, "batch/job: model output %q has shape %v for %d input rows: it must batch on dimension 0", t.Name, t.Shape, n)
		}
		c, err := rowio.ColumnOf(t.Name, t)
		if err != nil {
			return nil, err
		}
		out.Cols = append(out.Cols, c)
	}
	model := resp.Model
	if model == "" {
		model = j.md.Name
	}
	now := time.Now().UnixMicro()
	times := j.int64s(n)
	for i := range times {
		times[i] = now
	}
	out.Cols = append(out.Cols,
		rowio.Col{Field: rowio.Field{Name: ColModel, Type: serving.Bytes}, Data: j.texts.column(model, n)},
		rowio.Col{Field: rowio.Field{Name: ColVersion, Type: serving.Bytes}, Data: j.texts.column(resp.Version, n)},
		rowio.Col{Field: rowio.Field{Name: ColTimestamp, Type: serving.Int64, Timestamp: true}, Data: times})
	seen := make(map[string]bool, len(out.Cols))
	for _, c := range out.Cols {
		if seen[c.Name] {
			return nil, fatal{serving.Errorf(serving.InvalidArgument, "batch/job: two output columns are named %q (keys, outputs and %s, %s, %s, %s must differ)", c.Name, ColRow, ColModel, ColVersion, ColTimestamp)}
		}
		seen[c.Name] = true
	}
	return out, nil
}

// constTexts holds, per text, a column of that text repeated: the model
// and version columns repeat one text a batch, and sharing one column
// between batches (the writers only read it) spares the job 48 bytes of
// pointers a row for the collector to clear and scan. Safe for
// concurrent use.
type constTexts struct {
	mu   sync.Mutex
	cols map[string][][]byte // guarded by mu
}

// maxConstTexts bounds the texts kept: a model that answered with a new
// version every call would otherwise grow the map without end.
const maxConstTexts = 64

func (c *constTexts) column(s string, n int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if col := c.cols[s]; len(col) >= n {
		return col[:n:n]
	}
	b := []byte(s)
	col := make([][]byte, n)
	for i := range col {
		col[i] = b
	}
	if c.cols == nil {
		c.cols = map[string][][]byte{}
	}
	if len(c.cols) < maxConstTexts {
		c.cols[s] = col
	}
	return col
}

func orderOutputs(md serving.Metadata, ts []serving.Tensor) []serving.Tensor {
	if len(md.Outputs) == 0 {
		return ts
	}
	ordered := make([]serving.Tensor, 0, len(ts))
	for _, s := range md.Outputs {
		for _, t := range ts {
			if t.Name == s.Name {
				ordered = append(ordered, t)
			}
		}
	}
	if len(ordered) != len(ts) { // outputs the metadata does not list
		return ts
	}
	return ordered
}

// recycle gives a written batch's input frame back to the reader, which
// reads the next batch into its columns instead of allocating them (the
// collector's work grew with the rows: 64 MB of garbage a 64k-row job of
// 256-float vectors). That includes a column a request shared, as an
// input read from one column does: serving's contract lets a caller reuse
// a Request's tensor data once Predict returns, and whatever keeps a
// request past that (a shadow, a drift or quality monitor, a prediction
// logger, a cache's key) copies what it keeps. By now Predict has
// returned and the batch's rows, key columns included, are written. The
// pool is bounded by the frames in flight: a lane's window, plus one
// being read.
func (j *run) recycle(f *rowio.Frame) {
	select {
	case j.frames <- f:
	default:
	}
}

// int64s returns a slice of n int64s, one written out already if there
// is one: the row number and timestamp columns cost the collector 16
// bytes a row otherwise.
func (j *run) int64s(n int) []int64 {
	select {
	case s := <-j.ints:
		if cap(s) >= n {
			return s[:n]
		}
	default:
	}
	return make([]int64, n)
}

// recycleInts takes back a written output frame's row number and
// timestamp columns (see output).
func (j *run) recycleInts(out *rowio.Frame) {
	for _, c := range []rowio.Col{out.Cols[0], out.Cols[len(out.Cols)-1]} {
		if s, ok := c.Data.([]int64); ok {
			select {
			case j.ints <- s:
			default:
			}
		}
	}
}
