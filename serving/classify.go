package serving

import (
	"math"
	"slices"
	"strconv"
)

// ParamClassification is the output parameter of Triton's classification
// extension: an output requested with {"classification": k} is answered
// with its k top classes per row instead of its values (see Classify).
const ParamClassification = "classification"

// MaxClassification bounds k. Triton has no bound; here a k above the
// class count is cut to it anyway, so the bound only keeps a hostile k
// from being a number worth storing.
const MaxClassification = 1 << 20

// Classify answers Triton's classification extension for one output: t,
// the output's values, becomes a BYTES tensor of the same name holding,
// for each row, its k highest values as "value:index:label" strings,
// highest first. index is the position in the row; label is
// spec.Labels[index], and ":label" is left out when the output has no
// labels, as Triton leaves it out for an output without a labels file.
//
// Rows are along dimension 0 when the output is batchable (spec's dim 0
// is dynamic, or, with no spec, t has rank 2 or more): the answer is
// [rows, min(k, C)], C being the values per row. Otherwise the whole
// tensor is one row and the answer is [min(k, C)]. value is written as
// C's std::to_string writes it, which Triton uses: six decimals for
// floats ("0.937027"), plain integers, "nan" and "inf". Ties keep the
// lower index first (Triton's unstable sort leaves their order open); NaN
// ranks below every number.
//
// Numeric outputs of every type are classified (FP16 and BF16 through
// their float value; Triton refuses those); BOOL and BYTES outputs, and
// k < 1, are an InvalidArgument error naming the output. The cost is
// bounded by t: one sort per row and min(k, C) strings per row.
func Classify(t Tensor, spec TensorSpec, k int64) (Tensor, error) {
	if k < 1 || k > MaxClassification {
		return Tensor{}, Errorf(InvalidArgument, "serving: output %q: classification must be 1 to %d, got %d", t.Name, MaxClassification, k)
	}
	switch t.DataType {
	case Bool, Bytes:
		return Tensor{}, Errorf(InvalidArgument, "serving: output %q is %v: classification needs numbers", t.Name, t.DataType)
	}
	batched := len(t.Shape) >= 2
	if spec.Shape != nil {
		batched = spec.Batchable() && len(t.Shape) >= 1
	}
	rows, per := 1, t.Len()
	if batched {
		rows, per = int(t.Shape[0]), 1
		for _, d := range t.Shape[1:] {
			per *= int(d) // bounded: t is a valid tensor
		}
	}
	n := int(min(k, int64(per)))
	shape := []int64{int64(n)}
	if batched {
		shape = []int64{int64(rows), int64(n)}
	}
	if n == 0 { // no values: nothing to rank, however many rows the shape claims
		return Tensor{Name: t.Name, DataType: Bytes, Shape: shape, data: [][]byte{}}, nil
	}
	out := make([][]byte, 0, rows*n)
	idx := make([]int, per)
	vals := make([]float64, per)
	float := isFloat(t.DataType)
	for r := range rows {
		for j := range per {
			idx[j] = j
			vals[j], _ = t.Float64At(r*per + j)
		}
		slices.SortStableFunc(idx, func(a, b int) int { return descending(vals[a], vals[b]) })
		for _, j := range idx[:n] {
			var b []byte
			if float {
				b = appendCFloat(b, vals[j])
			} else {
				b = appendInteger(b, t, r*per+j)
			}
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(j), 10)
			if j < len(spec.Labels) {
				b = append(b, ':')
				b = append(b, spec.Labels[j]...)
			}
			out = append(out, b)
		}
	}
	return Tensor{Name: t.Name, DataType: Bytes, Shape: shape, data: out}, nil
}

// descending orders numbers from high to low, NaN last.
func descending(a, b float64) int {
	switch an, bn := math.IsNaN(a), math.IsNaN(b); {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func isFloat(dt DataType) bool { return dt == FP16 || dt == BF16 || dt == FP32 || dt == FP64 }

// appendCFloat writes v as C's printf("%f") does.
func appendCFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		if math.Signbit(v) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	case math.IsInf(v, 1):
		return append(b, "inf"...)
	case math.IsInf(v, -1):
		return append(b, "-inf"...)
	}
	return strconv.AppendFloat(b, v, 'f', 6, 64)
}

// appendInteger writes element i of an integer tensor exactly (a uint64 or
// int64 beyond 2^53 would lose digits through float64).
func appendInteger(b []byte, t Tensor, i int) []byte {
	switch d := t.data.(type) {
	case []int64:
		return strconv.AppendInt(b, d[i], 10)
	case []uint64:
		return strconv.AppendUint(b, d[i], 10)
	}
	v, _ := t.Float64At(i)
	return strconv.AppendInt(b, int64(v), 10)
}

// Classification asks for an output's top K classes (the classification
// extension's output parameter), as a transport decoded it.
type Classification struct {
	Output string
	K      int64
}

// ClassifyOutputs applies the classification extension to outs, the
// outputs a transport is about to write: each output named in cs is
// replaced by Classify of it, with its spec (and labels) from md. outs is
// not modified (a cached answer is shared): a new slice is returned when
// anything was classified. An output named in cs that outs lacks is a
// NotFound error.
func ClassifyOutputs(md Metadata, outs []Tensor, cs []Classification) ([]Tensor, error) {
	if len(cs) == 0 {
		return outs, nil
	}
	res := slices.Clone(outs)
	for _, c := range cs {
		i := slices.IndexFunc(res, func(t Tensor) bool { return t.Name == c.Output })
		if i < 0 {
			return nil, Errorf(NotFound, "serving: model %q gave no output %q to classify", md.Name, c.Output)
		}
		spec, _ := md.Output(c.Output)
		t, err := Classify(res[i], spec, c.K)
		if err != nil {
			return nil, err
		}
		res[i] = t
	}
	return res, nil
}
