package serving

import (
	"slices"
)

// Rows returns rows [lo, hi) of dimension 0 as a tensor that shares t's data.
// Batching splits a joined answer back to its callers with it.
func (t Tensor) Rows(lo, hi int64) (Tensor, error) {
	if len(t.Shape) == 0 {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: a scalar has no rows", t.Name)
	}
	if lo < 0 || hi < lo || hi > t.Shape[0] {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: rows [%d,%d) out of range [0,%d)", t.Name, lo, hi, t.Shape[0])
	}
	per := int64(1)
	for _, d := range t.Shape[1:] {
		per *= d // bounded: the whole shape was validated
	}
	shape := slices.Clone(t.Shape)
	shape[0] = hi - lo
	return Tensor{Name: t.Name, DataType: t.DataType, Shape: shape, data: sliceData(t.data, int(lo*per), int(hi*per))}, nil
}

// ConcatRows joins tensors along dimension 0 into a new tensor named after the
// first. All must share datatype, rank and the dims after the first.
func ConcatRows(ts []Tensor) (Tensor, error) {
	if len(ts) == 0 {
		return Tensor{}, Errorf(InvalidArgument, "serving: ConcatRows of no tensors")
	}
	first := ts[0]
	if len(first.Shape) == 0 {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: a scalar has no rows", first.Name)
	}
	rows, n := int64(0), 0
	for _, t := range ts {
		if t.DataType != first.DataType || !slices.Equal(t.Shape[min(1, len(t.Shape)):], first.Shape[1:]) || len(t.Shape) != len(first.Shape) {
			return Tensor{}, Errorf(InvalidArgument, "serving: ConcatRows %q: %v%v does not match %v%v",
				first.Name, t.DataType, t.Shape, first.DataType, first.Shape)
		}
		rows += t.Shape[0]
		n += t.Len()
	}
	shape := slices.Clone(first.Shape)
	shape[0] = rows
	if _, err := NumElements(shape); err != nil {
		return Tensor{}, err
	}
	data, off := makeData(first.DataType, n), 0
	for _, t := range ts {
		off += copyData(data, off, t.data)
	}
	return Tensor{Name: first.Name, DataType: first.DataType, Shape: shape, data: data}, nil
}
