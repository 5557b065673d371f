package rowio

import (
	"fmt"
	"reflect"
	"time"

	"github.com/servekit/servekit/serving"
)

// The typed slices a column holds are the ones serving.Tensor holds, so a
// column becomes a tensor without a copy (serving.FromSlice). The helpers
// below work on them through reflection: they run once per frame or per
// bad row, never per value, where typed code does the work.

func makeData(dt serving.DataType, n, capacity int) any {
	t, err := serving.Make("", dt, []int64{int64(capacity)})
	if err != nil {
		return nil
	}
	return sliceOf(t.Data(), 0, n)
}

func dataLen(d any) int {
	if d == nil {
		return 0
	}
	return reflect.ValueOf(d).Len()
}

func dataCap(d any) int { return reflect.ValueOf(d).Cap() }

// sliceOf returns d[lo:hi].
func sliceOf(d any, lo, hi int) any {
	if d == nil {
		return nil
	}
	return reflect.ValueOf(d).Slice(lo, hi).Interface()
}

func truncData(d any, n int) any { return sliceOf(d, 0, n) }

// pointerTo returns a pointer to a copy of the slice header d.
func pointerTo(d any) any {
	p := reflect.New(reflect.TypeOf(d))
	p.Elem().Set(reflect.ValueOf(d))
	return p.Interface()
}

// derefData returns the slice p points to.
func derefData(p any) any { return reflect.ValueOf(p).Elem().Interface() }

// setData stores the slice d where p points.
func setData(p, d any) { reflect.ValueOf(p).Elem().Set(reflect.ValueOf(d)) }

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
