package quality

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// Limits on labels, so a request's cost is bounded by what it sent.
const (
	// MaxIDLen is the longest id a label may name.
	MaxIDLen = 1024
	// MaxLabels is the most labels one Label call or POST may carry.
	MaxLabels = 100_000
	// MaxLabelsBody is the largest body LabelsHandler reads.
	MaxLabelsBody = 8 << 20
)

// Label is the ground truth of one prediction, named by the id of the
// request that made it ("<id>/<row>" for row r of a request of several
// rows). Value is 0 or 1 for a binary task, a class index for a
// multiclass one, the true value for regression.
type Label struct {
	ID    string
	Value float64
}

// LabelResult says what became of a batch of labels: Matched reached a
// remembered prediction (of any version that answered the id);
// Unmatched found none: an id never seen, or forgotten (see WithMemory).
type LabelResult struct {
	Matched   int64 `json:"matched"`
	Unmatched int64 `json:"unmatched"`
}

// Label joins labels to the model's remembered predictions. Every label
// is checked first: one that does not fit the task (a binary label of 2, an
// empty or overlong id) fails the whole call with an InvalidArgument
// error naming it, and none is taken, so a corrected batch can be sent
// again without doubles. A label for an id already labelled replaces the
// earlier one. It returns once the worker has taken them, or when ctx
// ends.
func (m *Monitor) Label(ctx context.Context, model string, labels []Label) (LabelResult, error) {
	pl := m.lookup(model)
	if pl == nil {
		return LabelResult{}, serving.Errorf(serving.NotFound, "quality: model %q is not watched", model)
	}
	if len(labels) > MaxLabels {
		return LabelResult{}, serving.Errorf(serving.InvalidArgument, "quality: %d labels in one call, at most %d", len(labels), MaxLabels)
	}
	keys := make([]uint64, len(labels))
	for i, l := range labels {
		if l.ID == "" || len(l.ID) > MaxIDLen {
			return LabelResult{}, serving.Errorf(serving.InvalidArgument, "quality: label %d: id of %d bytes, want 1 to %d", i, len(l.ID), MaxIDLen)
		}
		if err := pl.task.label(l.Value); err != nil {
			return LabelResult{}, serving.Errorf(serving.InvalidArgument, "quality: label %d (id %q): %v", i, l.ID, err)
		}
		keys[i] = m.hash(l.ID)
	}
	var res LabelResult
	err := m.do(ctx, func() {
		now := m.cfg.clock.Now()
		ms := m.w.models[model]
		for i, l := range labels {
			if ms != nil && m.w.label(ms, keys[i], l.Value, now) {
				res.Matched++
			} else {
				res.Unmatched++
			}
		}
		if ms != nil {
			for _, tr := range ms.trackers {
				m.w.publishStatus(tr)
			}
		}
	})
	if err != nil {
		return LabelResult{}, err
	}
	m.n.labels.Add(res.Matched)
	m.n.unmatched.Add(res.Unmatched)
	return res, nil
}

// LabelsHandler serves POST requests carrying labels as JSON:
//
//	{"labels": [{"id": "tx-42", "label": true}, {"id": "tx-43", "label": 0}]}
//
// A label is true or false, a number, or a class name of a multiclass
// task with Classes. The model is the path's {model} wildcard when the
// handler is mounted on a pattern that has one —
//
//	mux.Handle("POST /v2/models/{model}/labels", qm.LabelsHandler())
//
// — else the body's "model" field. It answers 200 with
// {"matched": n, "unmatched": m}; a body that is not such JSON, or a
// label that does not fit, 400; a model not watched, 404; a body over
// MaxLabelsBody or more than MaxLabels labels, 413; every error with a
// JSON body {"error": "..."}, and no label of a refused batch taken.
func (m *Monitor) LabelsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "quality: labels: method not allowed; POST them")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLabelsBody))
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("quality: labels: body over %d bytes; send smaller batches", MaxLabelsBody))
				return
			}
			writeError(w, http.StatusBadRequest, "quality: labels: reading the body: "+err.Error())
			return
		}
		model, labels, status, err := m.decodeLabels(r.PathValue("model"), body)
		if err != nil {
			writeError(w, status, err.Error())
			return
		}
		res, err := m.Label(r.Context(), model, labels)
		if err != nil {
			writeError(w, httpStatus(err), err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(res)
		w.Write(append(b, '\n'))
	})
}

// labelsBody is the JSON a POST carries.
type labelsBody struct {
	Model  string `json:"model"`
	Labels []struct {
		ID    *string         `json:"id"`
		Label json.RawMessage `json:"label"`
	} `json:"labels"`
}

func (m *Monitor) decodeLabels(pathModel string, body []byte) (string, []Label, int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b labelsBody
	if err := dec.Decode(&b); err != nil {
		return "", nil, http.StatusBadRequest, fmt.Errorf(`quality: labels: want {"labels": [{"id": "...", "label": ...}, ...]}: %v`, err)
	}
	if dec.More() {
		return "", nil, http.StatusBadRequest, errors.New("quality: labels: data after the JSON object")
	}
	model := pathModel
	switch {
	case model == "" && b.Model == "":
		return "", nil, http.StatusBadRequest, errors.New(`quality: labels: no model: mount the handler on a path with {model}, or name it in the body's "model"`)
	case model != "" && b.Model != "" && b.Model != model:
		return "", nil, http.StatusBadRequest, fmt.Errorf("quality: labels: the body names model %q, the path %q", b.Model, model)
	case model == "":
		model = b.Model
	}
	if len(b.Labels) > MaxLabels {
		return "", nil, http.StatusRequestEntityTooLarge, fmt.Errorf("quality: labels: %d labels, at most %d per request", len(b.Labels), MaxLabels)
	}
	pl := m.lookup(model)
	if pl == nil {
		return "", nil, http.StatusNotFound, fmt.Errorf("quality: labels: model %q is not watched", model)
	}
	out := make([]Label, len(b.Labels))
	for i, l := range b.Labels {
		if l.ID == nil {
			return "", nil, http.StatusBadRequest, fmt.Errorf(`quality: labels: label %d has no "id"`, i)
		}
		v, err := labelValue(&pl.task, l.Label)
		if err != nil {
			return "", nil, http.StatusBadRequest, fmt.Errorf("quality: labels: label %d (id %q): %v", i, *l.ID, err)
		}
		out[i] = Label{ID: *l.ID, Value: v}
	}
	return model, out, 0, nil
}

// labelValue reads a JSON label: true or false, a number, or a string (a
// class name, or a number's text).
func labelValue(t *Task, raw json.RawMessage) (float64, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return 0, errors.New(`no "label"`)
	case string(raw) == "true":
		return 1, nil
	case string(raw) == "false":
		return 0, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return t.classLabel(s)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("label %s: want true, false, a number or a class name", raw)
	}
	return v, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Write(append(b, '\n'))
}

func httpStatus(err error) int {
	switch serving.CodeOf(err) {
	case serving.InvalidArgument:
		return http.StatusBadRequest
	case serving.NotFound:
		return http.StatusNotFound
	case serving.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case serving.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
