package serving

import (
	"slices"
)

// dataTypeOf maps a Go element type to its natural datatype.
func dataTypeOf[T Element]() DataType {
	var z T
	switch any(z).(type) {
	case bool:
		return Bool
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case float32:
		return FP32
	case float64:
		return FP64
	}
	return Bytes
}

// goTypeName is the Go slice type that holds elements of dt.
func goTypeName(dt DataType) string {
	switch dt {
	case FP16, BF16:
		return "[]uint16"
	case Bytes:
		return "[][]uint8"
	}
	return goTypeNameOf(makeData(dt, 0))
}

func goTypeNameOf(data any) string {
	switch data.(type) {
	case []bool:
		return "[]bool"
	case []uint8:
		return "[]uint8"
	case []uint16:
		return "[]uint16"
	case []uint32:
		return "[]uint32"
	case []uint64:
		return "[]uint64"
	case []int8:
		return "[]int8"
	case []int16:
		return "[]int16"
	case []int32:
		return "[]int32"
	case []int64:
		return "[]int64"
	case []float32:
		return "[]float32"
	case []float64:
		return "[]float64"
	case [][]byte:
		return "[][]uint8"
	case nil:
		return "nil"
	}
	return "unsupported"
}

func makeData(dt DataType, n int) any {
	switch dt {
	case Bool:
		return make([]bool, n)
	case Uint8:
		return make([]uint8, n)
	case Uint16, FP16, BF16:
		return make([]uint16, n)
	case Uint32:
		return make([]uint32, n)
	case Uint64:
		return make([]uint64, n)
	case Int8:
		return make([]int8, n)
	case Int16:
		return make([]int16, n)
	case Int32:
		return make([]int32, n)
	case Int64:
		return make([]int64, n)
	case FP32:
		return make([]float32, n)
	case FP64:
		return make([]float64, n)
	case Bytes:
		return make([][]byte, n)
	}
	return nil
}

// lenAs returns the length of data and true when data is the Go slice type
// that holds dt's elements (goTypeName), and false otherwise, in one type
// assertion: Tensor.Validate and Metadata.Validate's in-order path run it
// on every tensor of every call, where comparing goTypeName strings cost
// about 100 instructions a tensor.
func lenAs(dt DataType, data any) (int, bool) {
	switch dt {
	case Bool:
		v, ok := data.([]bool)
		return len(v), ok
	case Uint8:
		v, ok := data.([]uint8)
		return len(v), ok
	case Uint16, FP16, BF16:
		v, ok := data.([]uint16)
		return len(v), ok
	case Uint32:
		v, ok := data.([]uint32)
		return len(v), ok
	case Uint64:
		v, ok := data.([]uint64)
		return len(v), ok
	case Int8:
		v, ok := data.([]int8)
		return len(v), ok
	case Int16:
		v, ok := data.([]int16)
		return len(v), ok
	case Int32:
		v, ok := data.([]int32)
		return len(v), ok
	case Int64:
		v, ok := data.([]int64)
		return len(v), ok
	case FP32:
		v, ok := data.([]float32)
		return len(v), ok
	case FP64:
		v, ok := data.([]float64)
		return len(v), ok
	case Bytes:
		v, ok := data.([][]byte)
		return len(v), ok
	}
	return 0, false
}

func dataLen(data any) int {
	switch v := data.(type) {
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

func cloneData(data any) any {
	switch v := data.(type) {
	case []bool:
		return slices.Clone(v)
	case []uint8:
		return slices.Clone(v)
	case []uint16:
		return slices.Clone(v)
	case []uint32:
		return slices.Clone(v)
	case []uint64:
		return slices.Clone(v)
	case []int8:
		return slices.Clone(v)
	case []int16:
		return slices.Clone(v)
	case []int32:
		return slices.Clone(v)
	case []int64:
		return slices.Clone(v)
	case []float32:
		return slices.Clone(v)
	case []float64:
		return slices.Clone(v)
	case [][]byte:
		return slices.Clone(v)
	}
	return nil
}

// sliceData returns data[lo:hi] without copying.
func sliceData(data any, lo, hi int) any {
	switch v := data.(type) {
	case []bool:
		return v[lo:hi:hi]
	case []uint8:
		return v[lo:hi:hi]
	case []uint16:
		return v[lo:hi:hi]
	case []uint32:
		return v[lo:hi:hi]
	case []uint64:
		return v[lo:hi:hi]
	case []int8:
		return v[lo:hi:hi]
	case []int16:
		return v[lo:hi:hi]
	case []int32:
		return v[lo:hi:hi]
	case []int64:
		return v[lo:hi:hi]
	case []float32:
		return v[lo:hi:hi]
	case []float64:
		return v[lo:hi:hi]
	case [][]byte:
		return v[lo:hi:hi]
	}
	return nil
}

// copyData copies src into dst starting at element off; both hold the same slice type.
func copyData(dst any, off int, src any) int {
	switch v := dst.(type) {
	case []bool:
		return copy(v[off:], src.([]bool))
	case []uint8:
		return copy(v[off:], src.([]uint8))
	case []uint16:
		return copy(v[off:], src.([]uint16))
	case []uint32:
		return copy(v[off:], src.([]uint32))
	case []uint64:
		return copy(v[off:], src.([]uint64))
	case []int8:
		return copy(v[off:], src.([]int8))
	case []int16:
		return copy(v[off:], src.([]int16))
	case []int32:
		return copy(v[off:], src.([]int32))
	case []int64:
		return copy(v[off:], src.([]int64))
	case []float32:
		return copy(v[off:], src.([]float32))
	case []float64:
		return copy(v[off:], src.([]float64))
	case [][]byte:
		return copy(v[off:], src.([][]byte))
	}
	return 0
}
