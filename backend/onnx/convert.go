package onnx

import (
	"bytes"
	"fmt"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// dataType maps an ONNX element type to servekit's, or InvalidType for the
// ones servekit cannot carry (complex, float8, int4/uint4, float4, int2).
func dataType(t ort.TensorElementDataType) serving.DataType {
	switch t {
	case ort.TensorElementDataTypeBool:
		return serving.Bool
	case ort.TensorElementDataTypeUint8:
		return serving.Uint8
	case ort.TensorElementDataTypeUint16:
		return serving.Uint16
	case ort.TensorElementDataTypeUint32:
		return serving.Uint32
	case ort.TensorElementDataTypeUint64:
		return serving.Uint64
	case ort.TensorElementDataTypeInt8:
		return serving.Int8
	case ort.TensorElementDataTypeInt16:
		return serving.Int16
	case ort.TensorElementDataTypeInt32:
		return serving.Int32
	case ort.TensorElementDataTypeInt64:
		return serving.Int64
	case ort.TensorElementDataTypeFloat16:
		return serving.FP16
	case ort.TensorElementDataTypeBFloat16:
		return serving.BF16
	case ort.TensorElementDataTypeFloat:
		return serving.FP32
	case ort.TensorElementDataTypeDouble:
		return serving.FP64
	case ort.TensorElementDataTypeString:
		return serving.Bytes
	}
	return serving.InvalidType
}

// halfType is the ONNX element type of servekit's 16-bit float types.
func halfType(dt serving.DataType) ort.TensorElementDataType {
	if dt == serving.BF16 {
		return ort.TensorElementDataTypeBFloat16
	}
	return ort.TensorElementDataTypeFloat16
}

// newInput wraps a validated request tensor in an ONNX Runtime value.
// Numeric data is shared, not copied: ort.NewTensor and NewCustomDataTensor
// point ONNX Runtime at the Go slice, which the request keeps alive for the
// run. Strings are copied, as ONNX Runtime keeps its own std::strings.
//
// Small numeric inputs are copied first. cgo refuses (panics on) a pointer
// into an allocation that also holds Go pointers, and small arrays are what
// decoders carve out of a larger object to save an allocation: servekit's
// REST decoder keeps a short data array in the request struct it decodes
// into, which made every run of a model that bypasses the frames below (one
// with a string input or output) fail with "argument of cgo function has Go
// pointer to unpinned Go pointer". A copy of a few KiB costs less than the
// cgo calls of the run; larger inputs are handed over in place and must be
// allocated on their own (make, or serving's constructors), as every
// decoder in servekit allocates them.
func newInput(t serving.Tensor) (ort.Value, error) {
	if t.DataType != serving.Bytes && t.RawSize() <= frameBytesPerTensor {
		t = own(t)
	}
	shape := ort.Shape(t.Shape) // the binding copies the dims
	switch d := t.Data().(type) {
	case []float32:
		return numeric(shape, d)
	case []float64:
		return numeric(shape, d)
	case []int64:
		return numeric(shape, d)
	case []int32:
		return numeric(shape, d)
	case []int16:
		return numeric(shape, d)
	case []int8:
		return numeric(shape, d)
	case []uint8:
		return numeric(shape, d)
	case []uint32:
		return numeric(shape, d)
	case []uint64:
		return numeric(shape, d)
	case []bool:
		return numeric(shape, d)
	case []uint16:
		if t.DataType == serving.FP16 || t.DataType == serving.BF16 {
			return half(shape, t.DataType, d)
		}
		return numeric(shape, d)
	case [][]byte:
		return stringInput(t.Name, shape, d)
	}
	return nil, serving.Errorf(serving.Internal, "onnx: input %q: no conversion for %v data %T", t.Name, t.DataType, t.Data())
}

// own copies a fixed-size tensor into a fresh allocation of its own.
func own(t serving.Tensor) serving.Tensor {
	c, err := serving.Make(t.Name, t.DataType, t.Shape)
	if err != nil {
		return t // validated already: unreachable
	}
	copy(c.RawBytes(), t.RawBytes())
	return c
}

// numeric creates a tensor over data; rank 0 needs the binding's Scalar
// type, as its Tensor refuses an empty shape.
func numeric[T ort.TensorData](shape ort.Shape, data []T) (ort.Value, error) {
	if len(shape) == 0 {
		return ort.NewScalar(data[0])
	}
	return ort.NewTensor(shape, data)
}

// half creates an FP16 or BF16 tensor over the bits of data. The binding
// has no Go type for them, so the bytes go through a CustomDataTensor.
func half(shape ort.Shape, dt serving.DataType, data []uint16) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, errRankZero(dt)
	}
	if len(data) == 0 {
		// The binding wants at least one byte even for a zero-sized tensor;
		// ONNX Runtime only checks that the buffer is large enough.
		data = make([]uint16, 1)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), 2*len(data))
	return ort.NewCustomDataTensor(shape, b, halfType(dt))
}

func errRankZero(dt serving.DataType) error {
	return serving.Errorf(serving.Unimplemented,
		"onnx: rank-0 (scalar) %v tensors are not supported by the onnxruntime_go binding; give the model a shape [1] instead", dt)
}

// stringInput copies BYTES elements into an ONNX Runtime string tensor.
// ONNX Runtime takes C strings, so an element with a NUL byte would be cut
// short without notice: it is refused instead.
func stringInput(name string, shape ort.Shape, data [][]byte) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, errRankZero(serving.Bytes)
	}
	s := make([]string, len(data))
	for i, b := range data {
		if j := bytes.IndexByte(b, 0); j >= 0 {
			return nil, serving.Errorf(serving.InvalidArgument,
				"onnx: input %q element %d has a NUL byte at offset %d; ONNX Runtime string tensors cannot carry it", name, i, j)
		}
		// A view, not a copy: SetContents copies each string into C memory
		// before returning.
		s[i] = unsafe.String(unsafe.SliceData(b), len(b))
	}
	v, err := ort.NewStringTensor(shape)
	if err != nil {
		return nil, err
	}
	if err := v.SetContents(s); err != nil {
		v.Destroy()
		return nil, err
	}
	return v, nil
}

// newOutput allocates a Go buffer for an output of a known shape and a
// tensor over it, so ONNX Runtime writes the result straight into the slice
// the response will hold. Strings cannot be preallocated this way.
func newOutput(dt serving.DataType, shape []int64, n int) (ort.Value, any, error) {
	s := ort.Shape(shape)
	switch dt {
	case serving.FP32:
		return outBuf[float32](s, n)
	case serving.FP64:
		return outBuf[float64](s, n)
	case serving.Int64:
		return outBuf[int64](s, n)
	case serving.Int32:
		return outBuf[int32](s, n)
	case serving.Int16:
		return outBuf[int16](s, n)
	case serving.Int8:
		return outBuf[int8](s, n)
	case serving.Uint8:
		return outBuf[uint8](s, n)
	case serving.Uint16:
		return outBuf[uint16](s, n)
	case serving.Uint32:
		return outBuf[uint32](s, n)
	case serving.Uint64:
		return outBuf[uint64](s, n)
	case serving.Bool:
		return outBuf[bool](s, n)
	case serving.FP16, serving.BF16:
		data := make([]uint16, n)
		v, err := half(s, dt, data)
		return v, data, err
	}
	return nil, nil, fmt.Errorf("onnx: cannot preallocate a %v output", dt)
}

func outBuf[T ort.TensorData](shape ort.Shape, n int) (ort.Value, any, error) {
	if len(shape) == 0 {
		v, err := ort.NewEmptyScalar[T]()
		return v, nil, err // read back with scalarData after the run
	}
	data := make([]T, n)
	v, err := ort.NewTensor(shape, data)
	return v, data, err
}

// scalarData reads a rank-0 output preallocated by outBuf.
func scalarData(v ort.Value) any {
	switch s := v.(type) {
	case *ort.Scalar[float32]:
		return []float32{s.GetData()}
	case *ort.Scalar[float64]:
		return []float64{s.GetData()}
	case *ort.Scalar[int64]:
		return []int64{s.GetData()}
	case *ort.Scalar[int32]:
		return []int32{s.GetData()}
	case *ort.Scalar[int16]:
		return []int16{s.GetData()}
	case *ort.Scalar[int8]:
		return []int8{s.GetData()}
	case *ort.Scalar[uint8]:
		return []uint8{s.GetData()}
	case *ort.Scalar[uint16]:
		return []uint16{s.GetData()}
	case *ort.Scalar[uint32]:
		return []uint32{s.GetData()}
	case *ort.Scalar[uint64]:
		return []uint64{s.GetData()}
	case *ort.Scalar[bool]:
		return []bool{s.GetData()}
	}
	return nil
}

// ortData takes the Go data out of an output ONNX Runtime allocated. The
// binding has already copied numeric data into a Go slice, which stays
// valid after the value is destroyed; strings are read out here.
func ortData(v ort.Value) (any, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return t.GetData(), nil
	case *ort.Tensor[float64]:
		return t.GetData(), nil
	case *ort.Tensor[int64]:
		return t.GetData(), nil
	case *ort.Tensor[int32]:
		return t.GetData(), nil
	case *ort.Tensor[int16]:
		return t.GetData(), nil
	case *ort.Tensor[int8]:
		return t.GetData(), nil
	case *ort.Tensor[uint8]:
		return t.GetData(), nil
	case *ort.Tensor[uint16]:
		return t.GetData(), nil
	case *ort.Tensor[uint32]:
		return t.GetData(), nil
	case *ort.Tensor[uint64]:
		return t.GetData(), nil
	case *ort.Tensor[bool]:
		return t.GetData(), nil
	case *ort.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return nil, err
		}
		b := make([][]byte, len(s))
		for i := range s {
			b[i] = []byte(s[i])
		}
		return b, nil
	}
	return nil, fmt.Errorf("onnx: unexpected output value %T", v)
}

// fresh copies raw, the bytes of a numeric tensor of type dt, into a new
// slice of dt's Go type, held as an any that points at *at (boxIn).
func fresh(dt serving.DataType, raw []byte, at *[]byte) any {
	switch dt {
	case serving.FP32:
		return boxIn(freshOf[float32](raw), at)
	case serving.FP64:
		return boxIn(freshOf[float64](raw), at)
	case serving.Int64:
		return boxIn(freshOf[int64](raw), at)
	case serving.Int32:
		return boxIn(freshOf[int32](raw), at)
	case serving.Int16:
		return boxIn(freshOf[int16](raw), at)
	case serving.Int8:
		return boxIn(freshOf[int8](raw), at)
	case serving.Uint8:
		return boxIn(freshOf[uint8](raw), at)
	case serving.Uint16, serving.FP16, serving.BF16:
		return boxIn(freshOf[uint16](raw), at)
	case serving.Uint32:
		return boxIn(freshOf[uint32](raw), at)
	case serving.Uint64:
		return boxIn(freshOf[uint64](raw), at)
	case serving.Bool:
		return boxIn(freshOf[bool](raw), at)
	}
	return nil
}

// boxIn returns s as an any whose data word points at *at, which takes
// s's header, where any(s) would allocate 24 bytes for a copy of the
// header (runtime.convTslice): at is a field of the response's own
// allocation, which saves one allocation, about 200 instructions, an
// output. An interface's value must never change, and nothing writes *at
// again: the response owns it and the field is not exported.
//
// It relies on an interface being two words, the type's and a pointer to
// the value, for a type that is not pointer-shaped (a slice is not): the
// layout the runtime, reflect and the compiler all share.
// TestPredictOwnsItsOutputs reads the answers back through
// serving.Values and Tensor.Data.
func boxIn[T any](s []T, at *[]byte) any {
	p := (*[]T)(unsafe.Pointer(at)) // a slice header is a slice header whatever its element
	*p = s
	var a any = []T(nil) // the type word; a nil slice boxes without allocating
	(*[2]unsafe.Pointer)(unsafe.Pointer(&a))[1] = unsafe.Pointer(p)
	return a
}

// freshOf is written as make then copy of a typed slice, which the
// compiler turns into one allocation that is not zeroed first. raw holds
// T's bytes, so it is aligned for T.
func freshOf[T any](raw []byte) []T {
	var z T
	src := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/int(unsafe.Sizeof(z)))
	s := make([]T, len(src))
	copy(s, src)
	return s
}
