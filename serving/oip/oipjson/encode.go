package oipjson

import (
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// Bodies are written with strconv.Append* into pooled buffers: no
// reflection, no intermediate []any.

// NonFinite says how FP16, BF16, FP32 and FP64 NaN and ±Inf are written in
// JSON, which has no such numbers: the codec's NaN policy, one for every
// transport and for the prediction logger.
type NonFinite uint8

const (
	// NonFiniteString writes "NaN", "Infinity" and "-Infinity" as JSON
	// strings, as the proto3 JSON mapping (and so KServe's gRPC gateway) does:
	// the body stays valid JSON for every parser. The default.
	NonFiniteString NonFinite = iota
	// NonFiniteBare writes bare NaN, Infinity and -Infinity tokens as Triton
	// does (rapidjson's kWriteNanAndInfFlag). Python's json and rapidjson read
	// them; JavaScript's JSON.parse and Go's encoding/json do not.
	NonFiniteBare
	// NonFiniteNull writes null, as JavaScript's JSON.stringify does. The
	// value is lost; use it only for clients that cannot take the others.
	NonFiniteNull
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Buffer returns a pooled buffer for a body; give it back with PutBuffer
// once the body is written. Transports use it for every answer.
func Buffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns a buffer from Buffer. A rare huge one is let go rather
// than pinned.
func PutBuffer(b *[]byte) {
	if cap(*b) > 1<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD:
// JSON cannot carry arbitrary bytes (send them as binary data).
func AppendString(b []byte, s string) []byte { return appendString(b, s) }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD:
// JSON cannot carry arbitrary bytes (ask for binary_data for those).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendShape(b []byte, shape []int64) []byte {
	b = append(b, '[')
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return append(b, ']')
}

func appendFloat(b []byte, f float64, bits int, nf NonFinite) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		var tok string
		switch {
		case math.IsNaN(f):
			tok = "NaN"
		case f > 0:
			tok = "Infinity"
		default:
			tok = "-Infinity"
		}
		switch nf {
		case NonFiniteBare:
			return append(b, tok...)
		case NonFiniteNull:
			return append(b, "null"...)
		}
		b = append(b, '"')
		b = append(b, tok...)
		return append(b, '"')
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendElems appends elements [lo, hi) of t, comma-separated, no brackets.
func appendElems(b []byte, t serving.Tensor, lo, hi int, nf NonFinite) []byte {
	switch v := t.Data().(type) {
	case []float32:
		return appendEach(b, v[lo:hi], func(b []byte, x float32) []byte { return appendFloat(b, float64(x), 32, nf) })
	case []float64:
		return appendEach(b, v[lo:hi], func(b []byte, x float64) []byte { return appendFloat(b, x, 64, nf) })
	case []uint16:
		switch t.DataType {
		case serving.FP16:
			return appendEach(b, v[lo:hi], func(b []byte, x uint16) []byte { return appendFloat(b, float64(serving.FP16ToFloat32(x)), 32, nf) })
		case serving.BF16:
			return appendEach(b, v[lo:hi], func(b []byte, x uint16) []byte { return appendFloat(b, float64(serving.BF16ToFloat32(x)), 32, nf) })
		}
		return appendEach(b, v[lo:hi], appendUint[uint16])
	case []bool:
		return appendEach(b, v[lo:hi], strconv.AppendBool)
	case [][]byte:
		return appendEach(b, v[lo:hi], func(b []byte, x []byte) []byte { return appendString(b, str(x)) })
	case []int64:
		return appendEach(b, v[lo:hi], appendInt[int64])
	case []int32:
		return appendEach(b, v[lo:hi], appendInt[int32])
	case []int16:
		return appendEach(b, v[lo:hi], appendInt[int16])
	case []int8:
		return appendEach(b, v[lo:hi], appendInt[int8])
	case []uint64:
		return appendEach(b, v[lo:hi], appendUint[uint64])
	case []uint32:
		return appendEach(b, v[lo:hi], appendUint[uint32])
	case []uint8:
		return appendEach(b, v[lo:hi], appendUint[uint8])
	}
	return b
}

// appendEach appends the elements of v with f, comma-separated.
func appendEach[T any](b []byte, v []T, f func([]byte, T) []byte) []byte {
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = f(b, x)
	}
	return b
}

func appendInt[T int8 | int16 | int32 | int64](b []byte, x T) []byte {
	return strconv.AppendInt(b, int64(x), 10)
}

func appendUint[T uint8 | uint16 | uint32 | uint64](b []byte, x T) []byte {
	return strconv.AppendUint(b, uint64(x), 10)
}

// appendNested appends elements starting at off as arrays nested by shape
// (V1 answers are nested; V2 answers are flat, as Triton's are). A scalar
// shape appends the bare element.
func appendNested(b []byte, t serving.Tensor, shape []int64, off int, nf NonFinite) []byte {
	if len(shape) == 0 {
		return appendElems(b, t, off, off+1, nf)
	}
	per := 1
	for _, d := range shape[1:] {
		per *= int(d)
	}
	b = append(b, '[')
	if len(shape) == 1 {
		b = appendElems(b, t, off, off+int(shape[0]), nf)
	} else {
		for i := range int(shape[0]) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNested(b, t, shape[1:], off+i*per, nf)
		}
	}
	return append(b, ']')
}
