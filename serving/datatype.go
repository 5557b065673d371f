package serving

import (
	"fmt"
	"strings"
)

// DataType is the element type of a Tensor. The names are the Open Inference
// Protocol's (KServe V2, Triton), so they travel over the wire unchanged.
type DataType uint8

// The Open Inference Protocol datatypes. FP16 and BF16 values are held as their
// raw IEEE / bfloat16 bit patterns in []uint16, because Go has no such types.
const (
	InvalidType DataType = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	BF16
	FP32
	FP64
	Bytes
)

var typeNames = [...]string{
	InvalidType: "INVALID",
	Bool:        "BOOL",
	Uint8:       "UINT8",
	Uint16:      "UINT16",
	Uint32:      "UINT32",
	Uint64:      "UINT64",
	Int8:        "INT8",
	Int16:       "INT16",
	Int32:       "INT32",
	Int64:       "INT64",
	FP16:        "FP16",
	BF16:        "BF16",
	FP32:        "FP32",
	FP64:        "FP64",
	Bytes:       "BYTES",
}

// DataTypes lists every valid DataType, in declaration order.
var DataTypes = []DataType{Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, FP16, BF16, FP32, FP64, Bytes}

// String returns the protocol name, such as "FP32".
func (d DataType) String() string {
	if int(d) < len(typeNames) {
		return typeNames[d]
	}
	return fmt.Sprintf("DataType(%d)", uint8(d))
}

// Valid reports whether d is one of the protocol datatypes.
func (d DataType) Valid() bool { return d > InvalidType && d <= Bytes }

// Size is the number of bytes of one element in the protocol's raw (binary)
// encoding; 0 for BYTES, whose elements vary in length, and for invalid types.
func (d DataType) Size() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16, FP16, BF16:
		return 2
	case Uint32, Int32, FP32:
		return 4
	case Uint64, Int64, FP64:
		return 8
	}
	return 0
}

// typeByName maps each valid type's protocol name to it: every JSON infer
// request parses one per input, and a lookup costs a tenth of upper-casing
// the name and comparing it with each.
var typeByName = func() map[string]DataType {
	m := make(map[string]DataType, len(DataTypes))
	for _, d := range DataTypes {
		m[typeNames[d]] = d
	}
	return m
}()

// ParseDataType maps a protocol name ("FP32", case-insensitive) to its DataType.
func ParseDataType(s string) (DataType, error) {
	if d, ok := typeByName[s]; ok {
		return d, nil
	}
	if d, ok := typeByName[strings.ToUpper(s)]; ok {
		return d, nil
	}
	return InvalidType, Errorf(InvalidArgument, "serving: unknown datatype %q", s)
}
