package quality

import (
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
		body := &spyReader{r: http.MaxBytesReader(w, r.Body, MaxLabelsBody)}
		model, labels, status, err := m.decodeLabels(r.PathValue("model"), body)
		if err != nil {
			if errors.As(body.err, new(*http.MaxBytesError)) {
				status, err = http.StatusRequestEntityTooLarge, fmt.Errorf("quality: labels: body over %d bytes; send smaller batches", MaxLabelsBody)
			}
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

// spyReader keeps the error its reader returned, which the JSON decoder
// reports in its own words.
type spyReader struct {
	r   io.Reader
	err error
}

func (s *spyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// rawLabel is one label as decoded, before the model's task reads it: a
// number, or (text >= 0) the text of a class name kept aside.
type rawLabel struct {
	id   string
	num  float64
	text int
}

// labelChunk is how many decoded labels are held per chunk: the labels are
// gathered in chunks and copied once into a slice of the exact size, so
// memory is not spent on a growing slice's copies.
const labelChunk = 4096

// decodeLabels reads {"model": ..., "labels": [{"id": ..., "label": ...}]}
// a token at a time, so memory follows the labels read rather than the
// body buffered whole.
func (m *Monitor) decodeLabels(pathModel string, body io.Reader) (string, []Label, int, error) {
	bad := func(format string, args ...any) (string, []Label, int, error) {
		return "", nil, http.StatusBadRequest, fmt.Errorf("quality: labels: "+format, args...)
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var chunks [][]rawLabel
	var texts []string
	count := 0
	var elem labelJSON
	var bodyModel string
	seen := map[string]bool{}
	syntax := func(err error) (string, []Label, int, error) {
		return bad(`want {"labels": [{"id": "...", "label": ...}, ...]}: %v`, err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return syntax(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return bad("%q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "model":
			if err := dec.Decode(&bodyModel); err != nil {
				return bad(`"model": %v`, err)
			}
		case "labels":
			if err := expectDelim(dec, '['); err != nil {
				return bad(`"labels" must be an array: %v`, err)
			}
			for dec.More() {
				if count == MaxLabels {
					return "", nil, http.StatusRequestEntityTooLarge, fmt.Errorf("quality: labels: more than %d labels in one request", MaxLabels)
				}
				l, text, err := decodeLabel(dec, count, &elem)
				if err != nil {
					return "", nil, http.StatusBadRequest, err
				}
				if l.text >= 0 {
					l.text = len(texts)
					texts = append(texts, text)
				}
				if count%labelChunk == 0 {
					chunks = append(chunks, make([]rawLabel, 0, labelChunk))
				}
				chunks[len(chunks)-1] = append(chunks[len(chunks)-1], l)
				count++
			}
			if err := expectDelim(dec, ']'); err != nil {
				return syntax(err)
			}
		default:
			return bad(`unknown field %q: want "model" and "labels"`, key)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object")
	}
	model := pathModel
	switch {
	case model == "" && bodyModel == "":
		return bad(`no model: mount the handler on a path with {model}, or name it in the body's "model"`)
	case model != "" && bodyModel != "" && bodyModel != model:
		return bad("the body names model %q, the path %q", bodyModel, model)
	case model == "":
		model = bodyModel
	}
	pl := m.lookup(model)
	if pl == nil {
		return "", nil, http.StatusNotFound, fmt.Errorf("quality: labels: model %q is not watched", model)
	}
	out := make([]Label, 0, count)
	for _, c := range chunks {
		for _, l := range c {
			v := l.num
			if l.text >= 0 {
				var err error
				if v, err = pl.task.classLabel(texts[l.text]); err != nil {
					return bad("label %d (id %q): %v", len(out), l.id, err)
				}
			}
			out = append(out, Label{ID: l.id, Value: v})
		}
	}
	return model, out, 0, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("found %v where %q belongs", tok, string(d))
	}
	return nil
}

// labelJSON is one element of "labels".
type labelJSON struct {
	ID    string          `json:"id"`
	Label json.RawMessage `json:"label"`
}

// decodeLabel reads one {"id": ..., "label": ...} object into e (reused)
// and then into a rawLabel, and the label's text if it is one.
func decodeLabel(dec *json.Decoder, i int, e *labelJSON) (rawLabel, string, error) {
	fail := func(format string, args ...any) (rawLabel, string, error) {
		return rawLabel{}, "", fmt.Errorf("quality: labels: label %d: "+format, append([]any{i}, args...)...)
	}
	*e = labelJSON{Label: e.Label[:0]}
	if err := dec.Decode(e); err != nil {
		return fail("%v", err)
	}
	if e.ID == "" {
		return fail(`no "id"`)
	}
	l := rawLabel{id: e.ID, text: -1}
	var text string
	raw := e.Label
	switch {
	case len(raw) == 0:
		return fail(`no "label" (id %q)`, e.ID)
	case string(raw) == "true":
		l.num = 1
	case string(raw) == "false":
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return fail("%v", err)
		}
		l.text = 0
	default:
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return fail("label %s: want true, false, a number or a class name", raw)
		}
		l.num = v
	}
	return l, text, nil
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
