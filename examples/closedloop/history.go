package main

import (
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// loggedRow is one prediction as predlog wrote it: which version answered
// which request, when, the features and the score.
type loggedRow struct {
	ID, Version string
	At          time.Time
	X           [numFeatures]float32
	Score       float32
}

// labelled is a logged row joined with its late label.
type labelled struct {
	loggedRow
	Fraud bool
}

// history is the traffic the server logged (predlog's Parquet files under
// the log directory, every version's; each row says which answered) joined with the feedback file's labels:
// the recent, labelled data that the retrainer fits on and the AUC guard
// judges by. It reads each finished log file once (predlog renames a file
// into place only when it is complete, so a file seen is final) and the
// feedback file's new lines on every refresh. Safe for concurrent use.
type history struct {
	logDir string
	mu     sync.Mutex
	labels labelReader     // guarded by mu, as are the fields below
	fraud  map[string]bool // label by request id
	read   map[string]bool // log files already read
	rows   []loggedRow     // in the order read
	failed int             // logged failed calls (files with an error column)
}

func newHistory(logDir, labelPath string) *history {
	return &history{logDir: logDir, labels: labelReader{path: labelPath}, fraud: map[string]bool{}, read: map[string]bool{}}
}

// predictionFields are the columns of a logged prediction that the story
// reads (predlog.Frame writes them; the model's input and output keep
// their names).
var predictionFields = []rowio.Field{
	{Name: predlog.ColID, Type: serving.Bytes},
	{Name: predlog.ColVersion, Type: serving.Bytes},
	{Name: predlog.ColTimestamp, Type: serving.Int64, Timestamp: true},
	{Name: "features", Type: serving.FP32, Width: numFeatures},
	{Name: "score", Type: serving.FP32},
}

var failureFields = []rowio.Field{{Name: predlog.ColID, Type: serving.Bytes}, {Name: predlog.ColError, Type: serving.Bytes}}

// refresh reads the log files and labels that appeared since the last
// call.
func (h *history) refresh() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.labels.read(h.fraud); err != nil {
		return err
	}
	var files []string
	err := filepath.WalkDir(h.logDir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() || strings.HasPrefix(d.Name(), ".") || filepath.Ext(path) != rowio.Parquet.Ext() || h.read[path]:
			return nil // directories, files being written (hidden), files read
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(files) // predlog names files by time
	for _, path := range files {
		if err := h.readFile(path); err != nil {
			return err
		}
		h.read[path] = true
	}
	return nil
}

// readFile appends one log file's predictions. A file of failed calls
// (predlog gives them their own file: they have an error column and no
// score) is counted, not read.
func (h *history) readFile(path string) error {
	if r, err := rowio.Open(path, rowio.Parquet, failureFields); err == nil {
		n, err := r.Skip(1 << 62)
		h.failed += int(n)
		return errors.Join(err, r.Close())
	}
	r, err := rowio.Open(path, rowio.Parquet, predictionFields)
	if err != nil {
		return err
	}
	defer r.Close()
	var f rowio.Frame
	for {
		if err := r.Read(&f, 4096); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		cols := make([]rowio.Col, len(predictionFields))
		for i, fl := range predictionFields {
			cols[i], _ = f.Col(fl.Name)
		}
		ids, versions, ts := cols[0].Data.([][]byte), cols[1].Data.([][]byte), cols[2].Data.([]int64)
		feats, scores := cols[3].Data.([]float32), cols[4].Data.([]float32)
		for i := range ids {
			row := loggedRow{ID: string(ids[i]), Version: string(versions[i]), At: time.UnixMicro(ts[i]), Score: scores[i]}
			copy(row.X[:], feats[i*numFeatures:])
			h.rows = append(h.rows, row)
		}
	}
}

// labelled returns the logged rows that keep(row) accepts and whose label
// has arrived, in time order.
func (h *history) labelled(keep func(loggedRow) bool) []labelled {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []labelled
	for _, r := range h.rows {
		if fraud, ok := h.fraud[r.ID]; ok && keep(r) {
			out = append(out, labelled{r, fraud})
		}
	}
	slices.SortStableFunc(out, func(a, b labelled) int { return a.At.Compare(b.At) })
	return out
}
