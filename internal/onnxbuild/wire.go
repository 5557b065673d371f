package onnxbuild

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Encoding helpers. Each appends one field; an embedded message is encoded
// into its own buffer first and then appended as bytes, because its length
// prefix has to be known before its body. Fields are written in field-number
// order, as protoc does, so dumps of our files read like everyone else's.

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendInt writes an int64 (or a sign-extended int32) varint field.
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	return appendVarintField(b, num, uint64(v))
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

const bytesType = protowire.BytesType

// field is one decoded field: u holds varint and fixed values, b holds the
// body of a length-delimited field (a slice of the input, not a copy).
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// forEachField walks the fields of one message. Groups, which onnx.proto
// never uses, are skipped rather than rejected so that foreign files with
// extensions still parse.
func forEachField(msg []byte, fn func(f field) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("onnxbuild: bad tag: %w", protowire.ParseError(n))
		}
		msg = msg[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("onnxbuild: field %d: %w", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// Repeated scalars arrive packed (one length-delimited field) or unpacked
// (one field per value); proto2 writers differ, so readers take both.

func appendVarints(dst []uint64, f field) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, f.u), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("onnxbuild: packed field %d: %w", f.num, protowire.ParseError(n))
			}
			dst = append(dst, v)
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("onnxbuild: field %d: wire type %d, want varint", f.num, f.typ)
}

// appendFixed appends fixed32 (size 4) or fixed64 (size 8) values.
func appendFixed(dst []uint64, f field, size int) ([]uint64, error) {
	want := protowire.Fixed32Type
	if size == 8 {
		want = protowire.Fixed64Type
	}
	switch f.typ {
	case want:
		return append(dst, f.u), nil
	case protowire.BytesType:
		if len(f.b)%size != 0 {
			return nil, fmt.Errorf("onnxbuild: packed field %d: %d bytes is not a multiple of %d", f.num, len(f.b), size)
		}
		for b := f.b; len(b) > 0; b = b[size:] {
			if size == 4 {
				v, _ := protowire.ConsumeFixed32(b)
				dst = append(dst, uint64(v))
			} else {
				v, _ := protowire.ConsumeFixed64(b)
				dst = append(dst, v)
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("onnxbuild: field %d: wire type %d, want fixed%d", f.num, f.typ, size*8)
}
