package rowio

import (
	"fmt"
	"time"

	"github.com/servekit/servekit/serving"
)

// The typed slices a column holds are the ones serving.Tensor holds, so a
// column becomes a tensor without a copy (serving.FromSlice).

func makeData(dt serving.DataType, n, capacity int) any {
	switch dt {
	case serving.Bool:
		return make([]bool, n, capacity)
	case serving.Uint8:
		return make([]uint8, n, capacity)
	case serving.Uint16, serving.FP16, serving.BF16:
		return make([]uint16, n, capacity)
	case serving.Uint32:
		return make([]uint32, n, capacity)
	case serving.Uint64:
		return make([]uint64, n, capacity)
	case serving.Int8:
		return make([]int8, n, capacity)
	case serving.Int16:
		return make([]int16, n, capacity)
	case serving.Int32:
		return make([]int32, n, capacity)
	case serving.Int64:
		return make([]int64, n, capacity)
	case serving.FP32:
		return make([]float32, n, capacity)
	case serving.FP64:
		return make([]float64, n, capacity)
	case serving.Bytes:
		return make([][]byte, n, capacity)
	}
	return nil
}

func dataLen(d any) int {
	switch v := d.(type) {
	case []bool:
		return len(v)
	case []uint8:
		return len(v)
	case []uint16:
		return len(v)
	case []uint32:
		return len(v)
	case []uint64:
		return len(v)
	case []int8:
		return len(v)
	case []int16:
		return len(v)
	case []int32:
		return len(v)
	case []int64:
		return len(v)
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case [][]byte:
		return len(v)
	}
	return 0
}

// sliceOf returns d[lo:hi].
func sliceOf(d any, lo, hi int) any {
	switch v := d.(type) {
	case []bool:
		return v[lo:hi]
	case []uint8:
		return v[lo:hi]
	case []uint16:
		return v[lo:hi]
	case []uint32:
		return v[lo:hi]
	case []uint64:
		return v[lo:hi]
	case []int8:
		return v[lo:hi]
	case []int16:
		return v[lo:hi]
	case []int32:
		return v[lo:hi]
	case []int64:
		return v[lo:hi]
	case []float32:
		return v[lo:hi]
	case []float64:
		return v[lo:hi]
	case [][]byte:
		return v[lo:hi]
	}
	return d
}

func truncData(d any, n int) any { return sliceOf(d, 0, n) }

// float64At reads element i of a numeric column, decoding FP16 and BF16.
func float64At(c Col, i int) (float64, bool) {
	t, err := serving.FromSlice(c.Name, c.Type, []int64{int64(dataLen(c.Data))}, c.Data)
	if err != nil {
		return 0, false
	}
	return t.Float64At(i)
}

// parseTime appends an RFC 3339 time (or an integer of microseconds) to a
// timestamp column.
func (b *builder) parseTime(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	*b.data.(*[]int64) = append(*b.data.(*[]int64), t.UnixMicro())
	return nil
}

// ColumnOf turns the rows of t (dimension 0) into a column named name:
// the elements after dimension 0 of each row become a vector (or a scalar
// when there is one). The column shares t's data.
func ColumnOf(name string, t serving.Tensor) (Col, error) {
	if len(t.Shape) == 0 {
		return Col{}, serving.Errorf(serving.InvalidArgument, "rowio: tensor %q is a scalar, it has no rows", t.Name)
	}
	w := 1
	for _, d := range t.Shape[1:] {
		w *= int(d)
	}
	if w == 0 {
		return Col{}, serving.Errorf(serving.InvalidArgument, "rowio: tensor %q %v has no elements per row", t.Name, t.Shape)
	}
	return Col{Field: Field{Name: name, Type: t.DataType, Width: w}, Data: t.Data()}, nil
}

// pointerTo returns a pointer to a copy of the slice header in d.
func pointerTo(d any) any {
	switch v := d.(type) {
	case []bool:
		return &v
	case []uint8:
		return &v
	case []uint16:
		return &v
	case []uint32:
		return &v
	case []uint64:
		return &v
	case []int8:
		return &v
	case []int16:
		return &v
	case []int32:
		return &v
	case []int64:
		return &v
	case []float32:
		return &v
	case []float64:
		return &v
	case [][]byte:
		return &v
	}
	return nil
}

// derefData returns the slice p points to.
func derefData(p any) any {
	switch v := p.(type) {
	case *[]bool:
		return *v
	case *[]uint8:
		return *v
	case *[]uint16:
		return *v
	case *[]uint32:
		return *v
	case *[]uint64:
		return *v
	case *[]int8:
		return *v
	case *[]int16:
		return *v
	case *[]int32:
		return *v
	case *[]int64:
		return *v
	case *[]float32:
		return *v
	case *[]float64:
		return *v
	case *[][]byte:
		return *v
	}
	return nil
}

// setData stores the slice d (of p's type) where p points.
func setData(p, d any) {
	switch v := p.(type) {
	case *[]bool:
		*v = d.([]bool)
	case *[]uint8:
		*v = d.([]uint8)
	case *[]uint16:
		*v = d.([]uint16)
	case *[]uint32:
		*v = d.([]uint32)
	case *[]uint64:
		*v = d.([]uint64)
	case *[]int8:
		*v = d.([]int8)
	case *[]int16:
		*v = d.([]int16)
	case *[]int32:
		*v = d.([]int32)
	case *[]int64:
		*v = d.([]int64)
	case *[]float32:
		*v = d.([]float32)
	case *[]float64:
		*v = d.([]float64)
	case *[][]byte:
		*v = d.([][]byte)
	}
}
