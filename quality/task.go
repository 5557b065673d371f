package quality

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Kind says what a model predicts.
type Kind string

// The kinds of tasks.
const (
	// Binary classifiers answer one score per row, the probability (or any
	// increasing score) of the positive class; a label is 0 or 1.
	Binary Kind = "binary"
	// Multiclass classifiers answer one score per class per row, ideally
	// probabilities; the predicted class is the largest. A label is the
	// class's index (or its name, see Task.Classes).
	Multiclass Kind = "multiclass"
	// Regression models answer one value per row; a label is the true
	// value.
	Regression Kind = "regression"
)

// MaxClasses bounds a multiclass task: each remembered prediction keeps
// one score per class.
const MaxClasses = 1000

// Task says what a model version predicts and where its answer is. A
// response's output tensor is read as rows × width (dimension 0 is the
// row): a binary task reads column Column (0 for an output of one value
// per row), a multiclass task reads the whole row, one score per class.
type Task struct {
	Kind   Kind   `json:"kind"`
	Output string `json:"output"`
	// Column is the positive class's score in a binary output of several
	// columns (as [p(negative), p(positive)]: 1), or the value of a
	// regression output.
	Column int `json:"column,omitempty"`
	// Threshold turns a binary score into the predicted class: positive
	// when the score is at least Threshold (default 0.5).
	Threshold float64 `json:"threshold,omitempty"`
	// Classes names a multiclass task's classes in output order, so labels
	// may name them; their number is the output's width.
	Classes []string `json:"classes,omitempty"`
	// NumClasses is the output's width of a multiclass task without names.
	NumClasses int `json:"num_classes,omitempty"`
}

// BinaryTask reads the positive class's score from column 0 of output,
// positive at 0.5 or above.
func BinaryTask(output string) Task { return Task{Kind: Binary, Output: output, Threshold: 0.5} }

// MulticlassTask reads the scores of the named classes, in order, from
// output.
func MulticlassTask(output string, classes ...string) Task {
	return Task{Kind: Multiclass, Output: output, Classes: classes, NumClasses: len(classes)}
}

// RegressionTask reads the prediction from column 0 of output.
func RegressionTask(output string) Task { return Task{Kind: Regression, Output: output} }

// width is how many values a remembered prediction keeps.
func (t Task) width() int {
	if t.Kind == Multiclass {
		return t.NumClasses
	}
	return 1
}

func (t *Task) normalize() error {
	switch {
	case t.Kind != Binary && t.Kind != Multiclass && t.Kind != Regression:
		return fmt.Errorf("task kind %q, want %q, %q or %q", t.Kind, Binary, Multiclass, Regression)
	case t.Output == "":
		return errors.New("task: no output tensor")
	case t.Column < 0:
		return fmt.Errorf("task: negative column %d", t.Column)
	case math.IsNaN(t.Threshold) || math.IsInf(t.Threshold, 0):
		return fmt.Errorf("task: threshold %v", t.Threshold)
	}
	if t.Kind == Binary && t.Threshold == 0 {
		t.Threshold = 0.5
	}
	if t.Kind != Multiclass {
		if t.Classes != nil || t.NumClasses != 0 {
			return fmt.Errorf("task: a %s task has no classes", t.Kind)
		}
		return nil
	}
	if t.Column != 0 || t.Threshold != 0 {
		return errors.New("task: a multiclass task reads whole rows: no column or threshold")
	}
	if t.NumClasses == 0 {
		t.NumClasses = len(t.Classes)
	}
	if t.NumClasses < 2 || t.NumClasses > MaxClasses || (t.Classes != nil && len(t.Classes) != t.NumClasses) {
		return fmt.Errorf("task: %d classes (%d names), want 2 to %d", t.NumClasses, len(t.Classes), MaxClasses)
	}
	seen := make(map[string]bool, len(t.Classes))
	for _, c := range t.Classes {
		if seen[c] {
			return fmt.Errorf("task: class %q appears twice", c)
		}
		seen[c] = true
	}
	return nil
}

// metrics lists what the task reports, in result order.
func (t Task) metrics() []Metric {
	switch t.Kind {
	case Binary:
		return []Metric{Accuracy, Precision, Recall, F1, AUC, LogLoss, Brier, CalibrationError}
	case Multiclass:
		return []Metric{Accuracy, Precision, Recall, F1, AUC, LogLoss, CalibrationError}
	}
	return []Metric{MAE, RMSE, MAPE, R2}
}

// estimated lists the metrics CBPE estimates without labels.
func (t Task) estimated() []Metric {
	switch t.Kind {
	case Binary:
		return []Metric{Accuracy, Precision, Recall, F1, AUC, LogLoss, Brier, CalibrationError}
	case Multiclass:
		return []Metric{Accuracy, Precision, Recall, F1, AUC, LogLoss}
	}
	return nil
}

// label checks a label's value for the task: 0 or 1, a class index, or a
// finite number.
func (t Task) label(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("label %v is not a finite number", v)
	case t.Kind == Binary && v != 0 && v != 1:
		return fmt.Errorf("label %v: a binary label is 0 or 1 (false or true)", v)
	case t.Kind == Multiclass && (v != math.Trunc(v) || v < 0 || v >= float64(t.NumClasses)):
		return fmt.Errorf("label %v: want a class index 0 to %d", v, t.NumClasses-1)
	}
	return nil
}

// classLabel reads a label given as text: a class name, or the number's
// text.
func (t Task) classLabel(s string) (float64, error) {
	for i, c := range t.Classes {
		if c == s {
			return float64(i), nil
		}
	}
	switch s {
	case "true":
		s = "1"
	case "false":
		s = "0"
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if t.Kind == Multiclass && t.Classes != nil {
			return 0, fmt.Errorf("label %q is not a class of %q", s, t.Classes)
		}
		return 0, fmt.Errorf("label %q is not a number", s)
	}
	return v, t.label(v)
}
