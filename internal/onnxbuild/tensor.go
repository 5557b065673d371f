package onnxbuild

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
)

// TensorProto field numbers (onnx.proto).
const (
	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorStringData   = 6
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorUint64Data   = 11
	tensorDataLocation = 14
)

// TensorData is a decoded TensorProto.
//
// Data holds a slice of the element type's natural Go type: []float32,
// []float64, []int8, []int16, []int32, []int64, []uint8, []uint16, []uint32,
// []uint64, []bool, [][]byte for String, and []uint16 bit patterns for
// Float16 and BFloat16 (Go has no half-precision type and the bits are what
// a runtime wants anyway). [EncodeTensor] also accepts []string for String
// and, for any fixed-width type, the little-endian bytes as []byte.
//
// Dims are in row-major order; no dims means a scalar with one element.
type TensorData struct {
	Name string
	Elem ElemType
	Dims []int64
	Data any
}

// goTypes maps each element type to the Go slice type DecodeTensor returns.
var goTypes = map[ElemType]reflect.Type{
	Float:    reflect.TypeFor[[]float32](),
	Double:   reflect.TypeFor[[]float64](),
	Int8:     reflect.TypeFor[[]int8](),
	Int16:    reflect.TypeFor[[]int16](),
	Int32:    reflect.TypeFor[[]int32](),
	Int64:    reflect.TypeFor[[]int64](),
	Uint8:    reflect.TypeFor[[]uint8](),
	Uint16:   reflect.TypeFor[[]uint16](),
	Uint32:   reflect.TypeFor[[]uint32](),
	Uint64:   reflect.TypeFor[[]uint64](),
	Bool:     reflect.TypeFor[[]bool](),
	Float16:  reflect.TypeFor[[]uint16](),
	BFloat16: reflect.TypeFor[[]uint16](),
	String:   reflect.TypeFor[[][]byte](),
}

// maxElems bounds a shape so that its byte size cannot overflow an int.
const maxElems = 1 << 40

// numElems is the element count of a shape. Dims come from files we do not
// control, so negative dims and overflow are errors, not panics.
func numElems(dims []int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("onnxbuild: negative dimension in %v", dims)
		}
		if d != 0 && n > maxElems/d {
			return 0, fmt.Errorf("onnxbuild: shape %v is too large", dims)
		}
		n *= d
	}
	return int(n), nil
}

// EncodeTensor serialises t as a TensorProto. Numbers go to raw_data in
// little-endian order, the compact form ONNX Runtime reads fastest; strings
// go to string_data, the only place they can live.
func EncodeTensor(t *TensorData) ([]byte, error) {
	if t == nil {
		return nil, errors.New("onnxbuild: nil tensor")
	}
	if !t.Elem.Valid() {
		return nil, fmt.Errorf("onnxbuild: tensor %q: unsupported element type %v", t.Name, t.Elem)
	}
	n, err := numElems(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("onnxbuild: tensor %q: %w", t.Name, err)
	}
	var b []byte
	for _, d := range t.Dims {
		b = appendInt(b, tensorDims, d)
	}
	b = appendInt(b, tensorDataType, int64(t.Elem))
	if t.Elem == String {
		strs, err := stringElems(t.Data)
		if err != nil {
			return nil, fmt.Errorf("onnxbuild: tensor %q: %w", t.Name, err)
		}
		if len(strs) != n {
			return nil, fmt.Errorf("onnxbuild: tensor %q: %d strings for shape %v", t.Name, len(strs), t.Dims)
		}
		for _, s := range strs {
			b = appendBytes(b, tensorStringData, s)
		}
		if t.Name != "" {
			b = appendString(b, tensorName, t.Name)
		}
		return b, nil
	}
	raw, err := rawBytes(t.Elem, t.Data)
	if err != nil {
		return nil, fmt.Errorf("onnxbuild: tensor %q: %w", t.Name, err)
	}
	if len(raw) != n*t.Elem.Size() {
		return nil, fmt.Errorf("onnxbuild: tensor %q: %d bytes of %v for shape %v, want %d",
			t.Name, len(raw), t.Elem, t.Dims, n*t.Elem.Size())
	}
	if t.Name != "" {
		b = appendString(b, tensorName, t.Name)
	}
	return appendBytes(b, tensorRawData, raw), nil
}

func stringElems(data any) ([][]byte, error) {
	switch d := data.(type) {
	case [][]byte:
		return d, nil
	case []string:
		out := make([][]byte, len(d))
		for i, s := range d {
			out[i] = []byte(s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("STRING data must be [][]byte or []string, not %T", data)
}

// rawBytes returns the little-endian encoding of data, which must be the
// natural slice type of elem or already-encoded []byte.
func rawBytes(elem ElemType, data any) ([]byte, error) {
	if raw, ok := data.([]byte); ok {
		return raw, nil
	}
	if reflect.TypeOf(data) != goTypes[elem] {
		return nil, fmt.Errorf("%v data must be %v or raw []byte, not %T", elem, goTypes[elem], data)
	}
	return binary.Append(nil, binary.LittleEndian, data)
}

// tensorFields gathers the data-carrying fields of one TensorProto before
// the element type, which may come after them on the wire, is known.
type tensorFields struct {
	raw                     []byte
	hasRaw                  bool
	floats, doubles         []uint64
	int32s, int64s, uint64s []uint64
	strs                    [][]byte
	external                bool
}

// DecodeTensor parses a TensorProto, such as the input_N.pb and output_N.pb
// files of ONNX's backend tests. It reads raw_data as well as the typed
// repeated fields, packed or not. Tensors kept in external files are
// rejected: nothing in servekit writes them.
func DecodeTensor(b []byte) (*TensorData, error) {
	t := &TensorData{}
	var p tensorFields
	err := forEachField(b, func(f field) error {
		var err error
		switch f.num {
		case tensorDims:
			var dims []uint64
			dims, err = appendVarints(nil, f)
			for _, d := range dims {
				t.Dims = append(t.Dims, int64(d))
			}
		case tensorDataType:
			t.Elem = ElemType(int32(f.u))
		case tensorName:
			t.Name = string(f.b)
		case tensorRawData:
			p.raw, p.hasRaw = f.b, true
		case tensorFloatData:
			p.floats, err = appendFixed(p.floats, f, 4)
		case tensorDoubleData:
			p.doubles, err = appendFixed(p.doubles, f, 8)
		case tensorInt32Data:
			p.int32s, err = appendVarints(p.int32s, f)
		case tensorInt64Data:
			p.int64s, err = appendVarints(p.int64s, f)
		case tensorUint64Data:
			p.uint64s, err = appendVarints(p.uint64s, f)
		case tensorStringData:
			p.strs = append(p.strs, bytes.Clone(f.b))
		case tensorDataLocation:
			p.external = f.u == 1
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !t.Elem.Valid() {
		return nil, fmt.Errorf("onnxbuild: tensor %q: unsupported element type %v", t.Name, t.Elem)
	}
	if p.external {
		return nil, fmt.Errorf("onnxbuild: tensor %q: external data is not supported", t.Name)
	}
	n, err := numElems(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("onnxbuild: tensor %q: %w", t.Name, err)
	}
	if p.hasRaw && t.Elem != String {
		t.Data, err = fromRaw(t.Elem, p.raw, n)
	} else {
		t.Data, err = fromTyped(t.Elem, &p, n)
	}
	if err != nil {
		return nil, fmt.Errorf("onnxbuild: tensor %q: %w", t.Name, err)
	}
	return t, nil
}

func fromRaw(elem ElemType, raw []byte, n int) (any, error) {
	if len(raw) != n*elem.Size() {
		return nil, fmt.Errorf("raw_data has %d bytes, want %d %v elements", len(raw), n, elem)
	}
	s := reflect.MakeSlice(goTypes[elem], n, n).Interface()
	if _, err := binary.Decode(raw, binary.LittleEndian, s); err != nil {
		return nil, err
	}
	return s, nil
}

// fromTyped converts the typed repeated field that onnx.proto assigns to
// elem. int32_data is the catch-all for every type of 16 bits or less,
// uint64_data holds both unsigned wide types.
func fromTyped(elem ElemType, p *tensorFields, n int) (any, error) {
	var vals []uint64
	switch elem {
	case Float:
		vals = p.floats
	case Double:
		vals = p.doubles
	case Int64:
		vals = p.int64s
	case Uint32, Uint64:
		vals = p.uint64s
	case String:
		if len(p.strs) != n {
			return nil, fmt.Errorf("%d strings, want %d", len(p.strs), n)
		}
		if p.strs == nil {
			return [][]byte{}, nil
		}
		return p.strs, nil
	default:
		vals = p.int32s
	}
	if len(vals) != n {
		return nil, fmt.Errorf("%d %v values, want %d", len(vals), elem, n)
	}
	switch elem {
	case Float:
		return convert(vals, func(v uint64) float32 { return math.Float32frombits(uint32(v)) }), nil
	case Double:
		return convert(vals, math.Float64frombits), nil
	case Int64:
		return convert(vals, func(v uint64) int64 { return int64(v) }), nil
	case Uint32:
		return convert(vals, func(v uint64) uint32 { return uint32(v) }), nil
	case Uint64:
		return convert(vals, func(v uint64) uint64 { return v }), nil
	case Int32:
		return convert(vals, func(v uint64) int32 { return int32(v) }), nil
	case Int16:
		return convert(vals, func(v uint64) int16 { return int16(v) }), nil
	case Int8:
		return convert(vals, func(v uint64) int8 { return int8(v) }), nil
	case Uint8:
		return convert(vals, func(v uint64) uint8 { return uint8(v) }), nil
	case Bool:
		return convert(vals, func(v uint64) bool { return v != 0 }), nil
	default: // Uint16, Float16, BFloat16
		return convert(vals, func(v uint64) uint16 { return uint16(v) }), nil
	}
}

func convert[T any](vals []uint64, f func(uint64) T) []T {
	out := make([]T, len(vals))
	for i, v := range vals {
		out[i] = f(v)
	}
	return out
}
