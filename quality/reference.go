package quality

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/jsonfile"
	"github.com/servekit/servekit/serving"
)

// ReferenceFormat names the reference's JSON format and its version; a file
// of another format is refused on load.
const ReferenceFormat = "servekit.quality.reference/v1"

// ReferenceFileName is the name a reference takes beside its model version
// in a model repository: <repo>/<model>/<version>/quality_reference.json.
const ReferenceFileName = "quality_reference.json"

// Limits a loaded reference must keep, so a corrupt file cannot make a
// monitor allocate without bound.
const (
	maxNameLen     = 1024
	maxSteps       = 1 << 20 // isotonic steps per calibrator
	maxComponents  = 2 * MaxClasses
	minReferenceRN = 2
)

// Reference is what a model version's live performance is judged against:
// its task, the calibrators CBPE reads calibrated probabilities through,
// and each metric on a labelled reference set (held-out data the model
// was not trained on) with what its sampling error is computed from. It
// ships beside the model version as JSON. Build one with a
// ReferenceBuilder; it is immutable once built or loaded, and safe to
// share.
type Reference struct {
	Format  string    `json:"format"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Created time.Time `json:"created,omitzero"`
	Task    Task      `json:"task"`
	// Rows is the size of the reference set.
	Rows int64 `json:"rows"`
	// Calibrators, one per class (one for a binary task, none for
	// regression).
	Calibrators []Calibrator `json:"calibrators,omitempty"`
	// Metrics are the task's metrics on the reference set.
	Metrics []ReferenceMetric `json:"metrics"`
}

// ReferenceMetric is one metric on the reference set: its value, what its
// standard error is computed from (absent when not known, such as for the
// calibration error), and CBPE's estimate of it on the same set, which
// shows how well the calibration fits.
type ReferenceMetric struct {
	Metric    Metric   `json:"metric"`
	Value     float64  `json:"value"`
	Estimated *float64 `json:"estimated,omitempty"`
	StdErr    *StdErr  `json:"std_err,omitempty"`
}

// Metric returns the named metric's reference values.
func (r *Reference) Metric(m Metric) (*ReferenceMetric, bool) {
	for i := range r.Metrics {
		if r.Metrics[i].Metric == m {
			return &r.Metrics[i], true
		}
	}
	return nil, false
}

func (r *Reference) String() string { return modelVersion(r.Model, r.Version) }

func modelVersion(model, version string) string {
	if version == "" {
		return fmt.Sprintf("%q (any version)", model)
	}
	return fmt.Sprintf("%q version %q", model, version)
}

// ReferenceOption configures a ReferenceBuilder.
type ReferenceOption interface{ applyReference(*ReferenceBuilder) }

type referenceOptionFunc func(*ReferenceBuilder)

func (f referenceOptionFunc) applyReference(b *ReferenceBuilder) { f(b) }

// WithCalibration sets how scores are calibrated for CBPE (default Auto).
func WithCalibration(c Calibration) ReferenceOption {
	return referenceOptionFunc(func(b *ReferenceBuilder) { b.calibration = c })
}

// ReferenceBuilder collects a labelled reference set and builds a
// Reference. It keeps every row until Reference is called. It is not safe
// for concurrent use.
type ReferenceBuilder struct {
	model, version string
	task           Task
	calibration    Calibration
	now            func() time.Time
	scores, labels []float64
}

// NewReferenceBuilder starts the reference of a model version (version ""
// for any version of the model without its own).
func NewReferenceBuilder(model, version string, task Task, opts ...ReferenceOption) (*ReferenceBuilder, error) {
	b := &ReferenceBuilder{model: model, version: version, task: task, calibration: Auto, now: time.Now}
	for _, o := range opts {
		o.applyReference(b)
	}
	if model == "" {
		return nil, serving.Errorf(serving.InvalidArgument, "quality: a reference needs a model name")
	}
	if err := b.task.normalize(); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "quality: %v", err)
	}
	switch b.calibration {
	case Auto, Isotonic, Platt, NoCalibration:
	default:
		return nil, serving.Errorf(serving.InvalidArgument, "quality: unknown calibration %q", b.calibration)
	}
	return b, nil
}

// Add records one labelled prediction: the scores as the model answered
// them (one for a binary task, the positive class's; one per class for a
// multiclass task; the prediction for regression) and the label.
func (b *ReferenceBuilder) Add(scores []float64, label float64) error {
	if len(scores) != b.task.width() {
		return serving.Errorf(serving.InvalidArgument, "quality: %d scores, a %s task has %d", len(scores), b.task.Kind, b.task.width())
	}
	for _, s := range scores {
		if !finite(s) {
			return serving.Errorf(serving.InvalidArgument, "quality: score %v is not finite", s)
		}
	}
	if err := b.task.label(label); err != nil {
		return serving.Errorf(serving.InvalidArgument, "quality: %v", err)
	}
	b.scores = append(b.scores, scores...)
	b.labels = append(b.labels, label)
	return nil
}

// Reference fits the calibrators and computes the metrics from what was
// added. A classifier's reference needs both classes (every class, for
// multiclass) among its labels.
func (b *ReferenceBuilder) Reference() (*Reference, error) {
	r := &Reference{
		Format: ReferenceFormat, Model: b.model, Version: b.version, Task: b.task,
		Created: b.now().UTC().Truncate(time.Second), Rows: int64(len(b.labels)),
	}
	if len(b.labels) < minReferenceRN {
		return nil, serving.Errorf(serving.InvalidArgument, "quality: reference %s has %d rows, want at least %d", r, len(b.labels), minReferenceRN)
	}
	w := b.task.width()
	switch b.task.Kind {
	case Binary:
		if err := bothClasses(b.labels, 1); err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "quality: reference %s: %v", r, err)
		}
		r.Calibrators = []Calibrator{fitCalibrator(b.calibration, b.scores, b.labels)}
	case Multiclass:
		yk := make([]float64, len(b.labels))
		col := make([]float64, len(b.labels))
		for c := range w {
			for i, y := range b.labels {
				yk[i] = b2f(int(y) == c)
				col[i] = b.scores[i*w+c]
			}
			if err := bothClasses(yk, 1); err != nil {
				return nil, serving.Errorf(serving.InvalidArgument, "quality: reference %s: class %d: %v", r, c, err)
			}
			r.Calibrators = append(r.Calibrators, fitCalibrator(b.calibration, col, yk))
		}
	}
	real := realized(&b.task, b.scores, b.labels)
	var est values
	if b.task.Kind != Regression {
		est, _ = estimate(&b.task, r.Calibrators, b.scores)
	}
	se := stdErrors(&b.task, b.scores, b.labels)
	for _, m := range b.task.metrics() {
		v, ok := real.get(m)
		if !ok {
			continue
		}
		rm := ReferenceMetric{Metric: m, Value: v}
		if e, ok := est.get(m); ok {
			rm.Estimated = &e
		}
		if s, ok := se[m]; ok && len(s.Components) > 0 {
			rm.StdErr = &s
		}
		r.Metrics = append(r.Metrics, rm)
	}
	if err := r.Validate(); err != nil {
		return nil, err // a bug here, not bad input: report it rather than ship it
	}
	return r, nil
}

func bothClasses(y []float64, pos float64) error {
	var p, n int
	for _, v := range y {
		if v == pos {
			p++
		} else {
			n++
		}
	}
	if p == 0 || n == 0 {
		return fmt.Errorf("labels of one class only (%d positive, %d negative): calibration and AUC need both", p, n)
	}
	return nil
}

// Encode writes the reference as indented JSON.
func (r *Reference) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(r)
}

// WriteFile writes the reference to path whole (internal/atomicfile:
// temp, fsync, rename, fsync of the directory), so a reader never sees
// half of it.
func (r *Reference) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := r.Encode(&buf); err != nil {
		return fmt.Errorf("quality: encode reference %s: %w", r, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("quality: write %s: %w", path, err)
	}
	return nil
}

// DecodeReference reads a reference from JSON and validates it. Unknown
// fields are refused, which catches misspelt keys in hand-edited files.
func DecodeReference(rd io.Reader) (*Reference, error) {
	return jsonfile.Decode[Reference](rd, "quality", "reference")
}

// ReadReference loads and validates the reference in the file at path.
func ReadReference(path string) (*Reference, error) {
	return jsonfile.Read[Reference](path, "quality", "reference")
}

// Validate checks the reference's consistency; DecodeReference calls it.
func (r *Reference) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("quality: reference %s: %s", r, fmt.Sprintf(format, args...))
	}
	if r.Format != ReferenceFormat {
		return fmt.Errorf("quality: unsupported reference format %q, want %q", r.Format, ReferenceFormat)
	}
	switch {
	case r.Model == "":
		return fail("no model name")
	case len(r.Model) > maxNameLen || len(r.Version) > maxNameLen:
		return fail("model or version name longer than %d bytes", maxNameLen)
	case r.Rows < minReferenceRN:
		return fail("%d rows, want at least %d", r.Rows, minReferenceRN)
	}
	if err := r.Task.normalize(); err != nil {
		return fail("%v", err)
	}
	want := map[Kind]int{Binary: 1, Multiclass: r.Task.NumClasses, Regression: 0}[r.Task.Kind]
	if len(r.Calibrators) != want {
		return fail("%d calibrators, a %s task has %d", len(r.Calibrators), r.Task.Kind, want)
	}
	for i := range r.Calibrators {
		c := &r.Calibrators[i]
		if len(c.X) > maxSteps {
			return fail("calibrator %d: %d steps, at most %d", i, len(c.X), maxSteps)
		}
		if err := c.validate(); err != nil {
			return fail("calibrator %d: %v", i, err)
		}
	}
	seen := map[Metric]bool{}
	for _, m := range r.Metrics {
		switch {
		case !m.Metric.valid():
			return fail("unknown metric %q", m.Metric)
		case seen[m.Metric]:
			return fail("metric %q appears twice", m.Metric)
		case !finite(m.Value) || m.Estimated != nil && !finite(*m.Estimated):
			return fail("metric %q: value not finite", m.Metric)
		}
		seen[m.Metric] = true
		if e := m.StdErr; e != nil {
			if len(e.Components) == 0 || len(e.Components) > maxComponents || !(e.Scale > 0) || math.IsInf(e.Scale, 0) {
				return fail("metric %q: %d standard-error components, scale %v", m.Metric, len(e.Components), e.Scale)
			}
			for _, c := range e.Components {
				if !(c.Sigma >= 0) || math.IsInf(c.Sigma, 0) || !(c.Share >= 0 && c.Share <= 1) || !c.Over.valid() ||
					c.Class < 0 || c.Class >= max(r.Task.width(), 2) {
					return fail("metric %q: standard-error component %+v out of range", m.Metric, c)
				}
			}
		}
	}
	return nil
}
