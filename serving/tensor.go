package serving

import (
	"fmt"
	"math"
	"slices"
)

// Element is the set of Go element types a Tensor can hold. BYTES elements are
// []byte; FP16 and BF16 elements are uint16 bit patterns.
type Element interface {
	bool | uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64 | float32 | float64 | []byte
}

// MaxElements bounds the element count of any Tensor, so that absurd shapes such
// as [1<<40, 1<<40] are rejected before anything is allocated. 1<<31 elements
// is 8 GiB of FP32, beyond any request a server should take in one piece.
const MaxElements = 1 << 31

// MaxRank bounds the dims of any shape. ONNX and Triton models rarely pass
// 8; a client's shape of a million dims of 1 would otherwise cost 8 bytes
// of memory per 2 bytes of JSON before its element count says anything.
const MaxRank = 64

// Tensor is a named, typed, shaped array. The zero value is invalid; build one
// with NewTensor, NewFP16, NewBF16, NewStrings, Make or FromRaw, which all check
// that the shape and the data agree.
//
// A Tensor shares its data slice: copying a Tensor copies the header, not the
// elements. Tensors in a Response may be shared with other callers (a cache
// hands the same answer to many), so treat received data as read-only and
// Clone before modifying.
type Tensor struct {
	Name     string
	DataType DataType
	Shape    []int64
	data     any
}

// NewTensor makes a tensor from a typed slice; the datatype follows from T
// (uint16 is UINT16 — use NewFP16 or NewBF16 for half-precision bits).
func NewTensor[T Element](name string, shape []int64, data []T) (Tensor, error) {
	return newTensor(name, dataTypeOf[T](), shape, data)
}

// NewFP16 makes an FP16 tensor from IEEE 754 half-precision bit patterns.
func NewFP16(name string, shape []int64, bits []uint16) (Tensor, error) {
	return newTensor(name, FP16, shape, bits)
}

// NewBF16 makes a BF16 tensor from bfloat16 bit patterns.
func NewBF16(name string, shape []int64, bits []uint16) (Tensor, error) {
	return newTensor(name, BF16, shape, bits)
}

// NewStrings makes a BYTES tensor from strings.
func NewStrings(name string, shape []int64, s []string) (Tensor, error) {
	b := make([][]byte, len(s))
	for i := range s {
		b[i] = []byte(s[i])
	}
	return newTensor(name, Bytes, shape, b)
}

// FromSlice wraps a typed slice held as any ([]float32, [][]byte, []uint16
// bits for FP16/BF16, …) without copying it, checking that its Go type
// matches dt and its length matches the shape. Code that moves tensors
// between representations (backends, codecs) uses it instead of a type
// switch of its own.
func FromSlice(name string, dt DataType, shape []int64, data any) (Tensor, error) {
	return newTensor(name, dt, shape, data)
}

// Make allocates a zeroed tensor of the given type and shape, all of it at
// once: the shape must come from a model or the program, never from a client
// (up to MaxElements, 16 GiB of FP64). Decoders of client data size what they
// allocate from the bytes received instead (FromRaw; see the package doc).
func Make(name string, dt DataType, shape []int64) (Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if !dt.Valid() {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: invalid datatype %v", name, dt)
	}
	return Tensor{Name: name, DataType: dt, Shape: slices.Clone(shape), data: makeData(dt, int(n))}, nil
}

func newTensor(name string, dt DataType, shape []int64, data any) (Tensor, error) {
	t := Tensor{Name: name, DataType: dt, Shape: shape, data: data}
	// The check every constructor runs, in a few instructions a dim when
	// it passes; Validate words what is wrong otherwise.
	if n, ok := lenAs(dt, data); ok && holds(shape, n) {
		return t, nil
	}
	if err := t.Validate(); err != nil {
		return Tensor{}, err
	}
	return t, nil
}

// holds reports whether shape is a valid shape (NumElements accepts it) of
// exactly n elements, without NumElements' division a dim: with every dim
// and the running product at most MaxElements (2^31), the next product
// cannot overflow. It may refuse a valid shape (a dim over MaxElements
// beside a zero one), never accept an invalid one; callers fall back to
// NumElements for its error.
func holds(shape []int64, n int) bool {
	if len(shape) > MaxRank {
		return false
	}
	p := int64(1)
	for _, d := range shape {
		if d < 0 || d > MaxElements {
			return false
		}
		if p *= d; p > MaxElements {
			return false
		}
	}
	return p == int64(n)
}

// Validate checks that the datatype is valid, the Go data matches it and the
// element count matches the shape.
func (t Tensor) Validate() error {
	if !t.DataType.Valid() {
		return Errorf(InvalidArgument, "serving: tensor %q: invalid datatype %v", t.Name, t.DataType)
	}
	n, err := NumElements(t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	got, ok := lenAs(t.DataType, t.data)
	if !ok {
		return Errorf(InvalidArgument, "serving: tensor %q: %v data must be %s, got %s", t.Name, t.DataType, goTypeName(t.DataType), goTypeNameOf(t.data))
	}
	if int64(got) != n {
		return Errorf(InvalidArgument, "serving: tensor %q: shape %v holds %d elements, data has %d", t.Name, t.Shape, n, got)
	}
	return nil
}

// NumElements is the product of the dims, checked for negative dims, overflow,
// MaxElements and MaxRank. An empty shape is a scalar: one element.
func NumElements(shape []int64) (int64, error) {
	if len(shape) > MaxRank {
		return 0, Errorf(InvalidArgument, "serving: shape of %d dims: more than %d", len(shape), MaxRank)
	}
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, Errorf(InvalidArgument, "serving: shape %v: dim %d is negative", shape, i)
		}
		if d != 0 && n > MaxElements/d {
			return 0, Errorf(InvalidArgument, "serving: shape %v: more than %d elements", shape, int64(MaxElements))
		}
		n *= d
	}
	if n > MaxElements {
		return 0, Errorf(InvalidArgument, "serving: shape %v: more than %d elements", shape, int64(MaxElements))
	}
	return n, nil
}

// Len is the number of elements.
func (t Tensor) Len() int { return dataLen(t.data) }

// Data returns the underlying slice ([]float32, [][]byte, …), or nil for the
// zero Tensor.
func (t Tensor) Data() any { return t.data }

// Values returns the tensor's elements as []T without copying. It fails, never
// panics, when T does not match the datatype.
func Values[T Element](t Tensor) ([]T, error) {
	v, ok := t.data.([]T)
	if !ok {
		var zero T
		return nil, Errorf(InvalidArgument, "serving: tensor %q is %v, not %T", t.Name, t.DataType, zero)
	}
	return v, nil
}

// Strings returns a BYTES tensor's elements as strings (a copy).
func (t Tensor) Strings() ([]string, error) {
	b, err := Values[[]byte](t)
	if err != nil {
		return nil, err
	}
	s := make([]string, len(b))
	for i := range b {
		s[i] = string(b[i])
	}
	return s, nil
}

// Clone returns a deep copy.
func (t Tensor) Clone() Tensor {
	c := t
	c.Shape = slices.Clone(t.Shape)
	switch v := t.data.(type) {
	case [][]byte:
		b := make([][]byte, len(v))
		for i := range v {
			b[i] = slices.Clone(v[i])
		}
		c.data = b
	default:
		c.data = cloneData(t.data)
	}
	return c
}

// Float64At returns element i converted to float64, decoding FP16 and BF16; ok
// is false for BYTES or an index out of range. It serves statistics and
// tolerant comparisons, not the hot path.
func (t Tensor) Float64At(i int) (v float64, ok bool) {
	if i < 0 || i >= t.Len() {
		return 0, false
	}
	switch d := t.data.(type) {
	case []bool:
		if d[i] {
			return 1, true
		}
		return 0, true
	case []uint8:
		return float64(d[i]), true
	case []uint16:
		switch t.DataType {
		case FP16:
			return float64(FP16ToFloat32(d[i])), true
		case BF16:
			return float64(BF16ToFloat32(d[i])), true
		}
		return float64(d[i]), true
	case []uint32:
		return float64(d[i]), true
	case []uint64:
		return float64(d[i]), true
	case []int8:
		return float64(d[i]), true
	case []int16:
		return float64(d[i]), true
	case []int32:
		return float64(d[i]), true
	case []int64:
		return float64(d[i]), true
	case []float32:
		return float64(d[i]), true
	case []float64:
		return d[i], true
	}
	return 0, false
}

// FP16ToFloat32 decodes an IEEE 754 half-precision bit pattern.
func FP16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac * 2^-24
		f := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// Float32ToFP16 encodes f as IEEE 754 half precision, rounding to nearest even.
func Float32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	frac := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN; keep NaN a NaN
		if frac != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-112 >= 0x1f: // overflow
		return sign | 0x7c00
	case exp-112 <= 0: // subnormal or zero
		if exp < 102 {
			return sign
		}
		m := frac | 0x800000
		shift := uint32(126 - exp)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp-112)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is the right rounding
	}
	return sign | uint16(h)
}

// BF16ToFloat32 decodes a bfloat16 bit pattern.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 encodes f as bfloat16, rounding to nearest even.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
