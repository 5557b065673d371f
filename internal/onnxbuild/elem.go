package onnxbuild

import "fmt"

// ElemType is an ONNX tensor element type; its values are those of
// TensorProto.DataType so they can be written to the wire as they are.
// The package keeps its own type rather than importing serving's so that
// model files can be built without the serving vocabulary.
type ElemType int32

// Element types, numbered as in onnx.proto.
const (
	Float    ElemType = 1
	Uint8    ElemType = 2
	Int8     ElemType = 3
	Uint16   ElemType = 4
	Int16    ElemType = 5
	Int32    ElemType = 6
	Int64    ElemType = 7
	String   ElemType = 8
	Bool     ElemType = 9
	Float16  ElemType = 10
	Double   ElemType = 11
	Uint32   ElemType = 12
	Uint64   ElemType = 13
	BFloat16 ElemType = 16
)

// ElemTypes lists every element type the package reads and writes, in
// wire order, so tests can range over them.
var ElemTypes = []ElemType{Float, Uint8, Int8, Uint16, Int16, Int32, Int64, String, Bool, Float16, Double, Uint32, Uint64, BFloat16}

var elemNames = map[ElemType]string{
	Float: "FLOAT", Uint8: "UINT8", Int8: "INT8", Uint16: "UINT16", Int16: "INT16",
	Int32: "INT32", Int64: "INT64", String: "STRING", Bool: "BOOL", Float16: "FLOAT16",
	Double: "DOUBLE", Uint32: "UINT32", Uint64: "UINT64", BFloat16: "BFLOAT16",
}

// String returns the onnx.proto name, e.g. "FLOAT16".
func (t ElemType) String() string {
	if s, ok := elemNames[t]; ok {
		return s
	}
	return fmt.Sprintf("ElemType(%d)", int32(t))
}

// Valid reports whether the package knows t. Complex types are left out:
// ONNX Runtime barely supports them and no servekit protocol carries them.
func (t ElemType) Valid() bool {
	_, ok := elemNames[t]
	return ok
}

// Size is the width of one element in raw_data, or 0 for String, whose
// elements have no fixed width.
func (t ElemType) Size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Double, Uint64:
		return 8
	}
	return 0
}
