package drift

import "strconv"

// Kind says how a feature's values are compared.
type Kind string

// The kinds of features.
const (
	// Numerical values are compared as distributions on the real line:
	// histograms on bins fixed from the reference, and the raw samples when
	// both are small (see the package doc).
	Numerical Kind = "numerical"
	// Categorical values are compared by their counts per category, the
	// reference's most frequent categories kept exactly and the rest pooled
	// in an "other" bucket.
	Categorical Kind = "categorical"
)

// Source says where a feature's value is found in a request or its
// response. A tensor is read as rows × width: dimension 0 is the row (the
// batch dimension) and the other dimensions are flattened into the width; a
// scalar is one row of width 1. Column picks one position in the width.
type Source struct {
	// Tensor names the input (or, with Output, the output) tensor.
	Tensor string `json:"tensor"`
	// Output reads the tensor from the response instead of the request.
	Output bool `json:"output,omitempty"`
	// Column is the position in the row, 0 for a tensor of one value per row.
	Column int `json:"column"`
	// Argmax, for outputs, takes the position of each row's largest value
	// instead of a column: the predicted class of a classifier.
	Argmax bool `json:"argmax,omitempty"`
}

// InputColumn is column col of a request's 2-D input tensor.
func InputColumn(tensor string, col int) Source { return Source{Tensor: tensor, Column: col} }

// Input is a request's input tensor of one value per row ([rows] or
// [rows, 1]).
func Input(tensor string) Source { return Source{Tensor: tensor} }

// OutputColumn is column col of a response's output tensor, such as one
// class's score.
func OutputColumn(tensor string, col int) Source {
	return Source{Tensor: tensor, Output: true, Column: col}
}

// Output is a response's output tensor of one value per row, such as a
// score.
func Output(tensor string) Source { return Source{Tensor: tensor, Output: true} }

// Argmax is the position of the largest value in each row of a response's
// output tensor: the predicted class. Use it with Categorical.
func Argmax(tensor string) Source { return Source{Tensor: tensor, Output: true, Argmax: true} }

func (s Source) String() string {
	where := "input "
	if s.Output {
		where = "output "
	}
	if s.Argmax {
		return "argmax of " + where + strconv.Quote(s.Tensor)
	}
	return where + strconv.Quote(s.Tensor) + " column " + strconv.Itoa(s.Column)
}

// Feature is one watched quantity: a named input column, a whole input, an
// output score or a predicted class.
type Feature struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Source Source `json:"source"`
}

// NumericalFeature is a numerical feature read from src.
func NumericalFeature(name string, src Source) Feature {
	return Feature{Name: name, Kind: Numerical, Source: src}
}

// CategoricalFeature is a categorical feature read from src.
func CategoricalFeature(name string, src Source) Feature {
	return Feature{Name: name, Kind: Categorical, Source: src}
}

// Columns names the columns of a 2-D input tensor, in order, as numerical
// features: Columns("features", "amount", "hour") watches column 0 as
// "amount" and column 1 as "hour". Change a Kind in the result to make one
// categorical.
func Columns(tensor string, names ...string) []Feature {
	fs := make([]Feature, len(names))
	for i, n := range names {
		fs[i] = NumericalFeature(n, InputColumn(tensor, i))
	}
	return fs
}
