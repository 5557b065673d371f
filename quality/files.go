package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// fileBatch is how many rows a file reader hands the worker at a time.
const fileBatch = 4096

// FileResult says what a file reader did: the labels' fate (or the
// predictions taken), and the rows that did not decode, which are
// skipped; the first of them is kept to say why.
type FileResult struct {
	LabelResult
	Predictions int64         `json:"predictions,omitempty"`
	Bad         int64         `json:"bad,omitempty"`
	FirstBad    *rowio.BadRow `json:"-"`
}

// ReadLabels joins the labels of a file (JSONL, CSV or Parquet, through
// rowio) to the model's remembered predictions: column id names the
// prediction (text, or an integer written in decimal), column label holds
// its label (a boolean, a number, or text as LabelsHandler reads it). Open
// the reader with those two fields, for example
//
//	r, err := rowio.Open("labels.jsonl", 0, []rowio.Field{
//		{Name: "id", Type: serving.Bytes}, {Name: "label", Type: serving.Bool}})
//
// A row that does not decode, or whose label does not fit the task, is
// counted in Bad and skipped; an error is returned only when the file
// cannot be read at all, or ctx ends (the labels before it are taken).
func (m *Monitor) ReadLabels(ctx context.Context, model string, r rowio.Reader, id, label string) (FileResult, error) {
	pl := m.lookup(model)
	if pl == nil {
		return FileResult{}, serving.Errorf(serving.NotFound, "quality: model %q is not watched", model)
	}
	var out FileResult
	var f rowio.Frame
	var batch []Label
	for {
		err := r.Read(&f, fileBatch)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.bad(f.Bad)
		ids, err1 := column(&f, id)
		labels, err2 := column(&f, label)
		if err := errors.Join(err1, err2); err != nil {
			return out, err
		}
		batch = batch[:0]
		for i := range f.Len() {
			l := Label{ID: text(ids, i)}
			v, err := cellLabel(&pl.task, labels, i)
			if err == nil && (l.ID == "" || len(l.ID) > MaxIDLen) {
				err = fmt.Errorf("id of %d bytes, want 1 to %d", len(l.ID), MaxIDLen)
			}
			if err != nil {
				out.bad([]rowio.BadRow{{Row: f.RowNumber(i), Err: err}})
				continue
			}
			l.Value = v
			batch = append(batch, l)
		}
		res, err := m.Label(ctx, model, batch)
		if err != nil {
			return out, err
		}
		out.Matched += res.Matched
		out.Unmatched += res.Unmatched
	}
}

func column(f *rowio.Frame, name string) (rowio.Col, error) {
	c, ok := f.Col(name)
	if !ok {
		return c, serving.Errorf(serving.InvalidArgument, "quality: the reader has no column %q: open it with that field", name)
	}
	return c, nil
}

func (r *FileResult) bad(rows []rowio.BadRow) {
	if len(rows) > 0 && r.FirstBad == nil {
		b := rows[0]
		r.FirstBad = &b
	}
	r.Bad += int64(len(rows))
}

// text is row i of a scalar column as text: bytes as they are, integers
// in decimal.
func text(c rowio.Col, i int) string {
	switch d := c.Data.(type) {
	case [][]byte:
		return string(d[i])
	case []int64:
		return strconv.FormatInt(d[i], 10)
	case []int32:
		return strconv.FormatInt(int64(d[i]), 10)
	}
	return ""
}

// cellLabel reads row i of a label column.
func cellLabel(t *Task, c rowio.Col, i int) (float64, error) {
	var v float64
	switch d := c.Data.(type) {
	case []bool:
		v = b2f(d[i])
	case [][]byte:
		return t.classLabel(string(d[i]))
	default:
		var ok bool
		if v, ok = float64At(c, i); !ok {
			return 0, fmt.Errorf("label column %q of type %v", c.Name, c.Type)
		}
	}
	return v, t.label(v)
}

func float64At(c rowio.Col, i int) (float64, bool) {
	switch d := c.Data.(type) {
	case []float64:
		return d[i], true
	case []float32:
		return float64(d[i]), true
	case []int64:
		return float64(d[i]), true
	case []int32:
		return float64(d[i]), true
	case []uint8:
		return float64(d[i]), true
	}
	return math.NaN(), false
}

// PredictionColumns name the columns of a predictions file, such as a
// batch/job output: the id (a key column), the task's output (a vector
// column of the output's width for multiclass or a multi-column binary
// output), the version that answered and when.
type PredictionColumns struct {
	ID, Output, Version, Time string
}

// JobColumns are the columns of a batch/job output keyed by id whose
// model output is named output: id, output, model_version, timestamp.
func JobColumns(output string) PredictionColumns {
	return PredictionColumns{ID: "id", Output: output, Version: "model_version", Time: "timestamp"}
}

// offer hands one prediction to the worker, waiting while the buffer is
// full.
func (m *Monitor) offer(ctx context.Context, o obs, sc []float64) error {
	for {
		b := &m.buf
		b.mu.Lock()
		if len(b.obs) < b.limit {
			first := len(b.obs) == 0
			b.obs = append(b.obs, o)
			b.scores = append(b.scores, sc...)
			b.requests++
			b.mu.Unlock()
			if first {
				select {
				case m.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		b.mu.Unlock()
		if err := m.do(ctx, func() {}); err != nil {
			return err
		}
	}
}

// ReadPredictions remembers the predictions of a file, such as a batch
// job's output, as if the model had answered them: at the time of their
// Time column (Unix microseconds, as rowio reads a timestamp; now when
// the column is ""), in windows of the version of their Version column
// (or the model's default version "" when the column is ""). Labels then
// join them as they join live traffic (ReadLabels, Label). Rows that do
// not decode are counted in Bad and skipped.
func (m *Monitor) ReadPredictions(ctx context.Context, model string, r rowio.Reader, cols PredictionColumns) (FileResult, error) {
	pl := m.lookup(model)
	if pl == nil {
		return FileResult{}, serving.Errorf(serving.NotFound, "quality: model %q is not watched", model)
	}
	var out FileResult
	var f rowio.Frame
	for {
		err := r.Read(&f, fileBatch)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.bad(f.Bad)
		ids, err := column(&f, cols.ID)
		if err != nil {
			return out, err
		}
		scores, err := column(&f, cols.Output)
		if err != nil {
			return out, err
		}
		var versions, times rowio.Col
		if cols.Version != "" {
			if versions, err = column(&f, cols.Version); err != nil {
				return out, err
			}
		}
		if cols.Time != "" {
			if times, err = column(&f, cols.Time); err != nil {
				return out, err
			}
		}
		w := pl.task.width()
		sw := max(scores.Width, 1)
		if pl.task.Kind == Multiclass && sw != w || pl.task.Kind != Multiclass && pl.task.Column >= sw {
			return out, serving.Errorf(serving.InvalidArgument, "quality: read predictions: column %q has %d values a row; the %s task reads %d (column %d)",
				cols.Output, sw, pl.task.Kind, w, pl.task.Column)
		}
		now := m.cfg.clock.Now().UnixNano()
		sc := make([]float64, w)
		for i := range f.Len() {
			o := obs{plan: pl, at: now}
			if cols.Version != "" {
				o.version = text(versions, i)
			}
			if cols.Time != "" {
				if us, ok := float64At(times, i); ok {
					o.at = time.UnixMicro(int64(us)).UnixNano()
				}
			}
			for j := range w {
				col := j
				if pl.task.Kind != Multiclass {
					col = pl.task.Column
				}
				v, ok := float64At(scores, i*sw+col)
				if !ok {
					v = math.NaN()
				}
				sc[j] = v
			}
			if id := text(ids, i); id != "" {
				o.key = m.hash(id)
			}
			// Wait for room rather than drop: a file is not live traffic.
			if err := m.offer(ctx, o, sc); err != nil {
				return out, err
			}
			out.Predictions++
		}
	}
}
