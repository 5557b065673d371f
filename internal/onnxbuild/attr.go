package onnxbuild

import (
	"fmt"
	"math"
	"slices"
)

// AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrString = 3
	attrTensor = 4
	attrFloats = 6
	attrInts   = 7
)

// Attr is one node attribute; make it with AttrInt, AttrFloat, AttrString,
// AttrInts, AttrFloats or AttrTensor.
type Attr struct {
	name   string
	typ    int64
	f      float32
	i      int64
	s      string
	floats []float32
	ints   []int64
	t      *TensorData
}

// AttrInt is an INT attribute, e.g. Softmax's axis or Cast's to.
func AttrInt(name string, v int64) Attr { return Attr{name: name, typ: attrInt, i: v} }

// AttrFloat is a FLOAT attribute, e.g. LeakyRelu's alpha.
func AttrFloat(name string, v float32) Attr { return Attr{name: name, typ: attrFloat, f: v} }

// AttrString is a STRING attribute, e.g. Pad's mode.
func AttrString(name, v string) Attr { return Attr{name: name, typ: attrString, s: v} }

// AttrInts is an INTS attribute, e.g. Transpose's perm.
func AttrInts(name string, v ...int64) Attr {
	return Attr{name: name, typ: attrInts, ints: slices.Clone(v)}
}

// AttrFloats is a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attr {
	return Attr{name: name, typ: attrFloats, floats: slices.Clone(v)}
}

// AttrTensor is a TENSOR attribute, e.g. Constant's value.
func AttrTensor(name string, t *TensorData) Attr { return Attr{name: name, typ: attrTensor, t: t} }

// encode writes an AttributeProto. Repeated values are written unpacked,
// the proto2 default that onnx.proto declares for them.
func (a Attr) encode() ([]byte, error) {
	if a.name == "" {
		return nil, fmt.Errorf("attribute without a name")
	}
	var b []byte
	b = appendString(b, 1, a.name)
	switch a.typ {
	case attrFloat:
		b = appendFixed32(b, 2, math.Float32bits(a.f))
	case attrInt:
		b = appendInt(b, 3, a.i)
	case attrString:
		b = appendString(b, 4, a.s)
	case attrTensor:
		t, err := EncodeTensor(a.t)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.name, err)
		}
		b = appendBytes(b, 5, t)
	case attrFloats:
		for _, f := range a.floats {
			b = appendFixed32(b, 7, math.Float32bits(f))
		}
	case attrInts:
		for _, v := range a.ints {
			b = appendInt(b, 8, v)
		}
	default:
		return nil, fmt.Errorf("attribute %q: zero Attr", a.name)
	}
	return appendInt(b, 20, a.typ), nil
}
