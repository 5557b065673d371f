//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

// The raw encoding is little-endian, like the hosts above; on others this file
// is left out and the package does not build, rather than answer wrongly.

package serving

import (
	"encoding/binary"
	"fmt"

	"unsafe"
)

// RawBytes returns the tensor in the protocol's raw binary encoding (Triton's
// binary tensor extension, ONNX raw_data): little-endian elements, BOOL as one
// byte, BYTES as a 4-byte little-endian length before each element.
//
// For fixed-size types the result aliases the tensor's memory: it costs no copy,
// and it must not be modified. For BYTES it is a new encoding.
func (t Tensor) RawBytes() []byte {
	switch v := t.data.(type) {
	case [][]byte:
		return t.AppendRaw(nil)
	case []bool:
		return view(v)
	case []uint8:
		return v
	case []uint16:
		return view(v)
	case []uint32:
		return view(v)
	case []uint64:
		return view(v)
	case []int8:
		return view(v)
	case []int16:
		return view(v)
	case []int32:
		return view(v)
	case []int64:
		return view(v)
	case []float32:
		return view(v)
	case []float64:
		return view(v)
	}
	return nil
}

// AppendRaw appends the raw encoding of t (see RawBytes) to dst.
func (t Tensor) AppendRaw(dst []byte) []byte {
	if v, ok := t.data.([][]byte); ok {
		for _, e := range v {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e)))
			dst = append(dst, e...)
		}
		return dst
	}
	return append(dst, t.RawBytes()...)
}

// RawSize is len(t.RawBytes()), computed without encoding.
func (t Tensor) RawSize() int {
	if v, ok := t.data.([][]byte); ok {
		n := 0
		for _, e := range v {
			n += 4 + len(e)
		}
		return n
	}
	return t.Len() * t.DataType.Size()
}

func view[T any](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// FromRaw decodes a tensor from the raw binary encoding (see RawBytes). The
// data is copied, so raw may be reused. Truncated or trailing bytes, and BYTES
// lengths that run past the end, are errors.
func FromRaw(name string, dt DataType, shape []int64, raw []byte) (Tensor, error) {
	n64, err := NumElements(shape)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if !dt.Valid() {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: invalid datatype %v", name, dt)
	}
	n := int(n64)
	if dt == Bytes {
		out := make([][]byte, n)
		rest := raw
		for i := range out {
			if len(rest) < 4 {
				return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: raw BYTES truncated at element %d", name, i)
			}
			l := binary.LittleEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(l) > uint64(len(rest)) {
				return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: raw BYTES element %d claims %d bytes, %d left", name, i, l, len(rest))
			}
			out[i] = append([]byte(nil), rest[:l]...)
			rest = rest[l:]
		}
		if len(rest) != 0 {
			return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: %d bytes after %d BYTES elements", name, len(rest), n)
		}
		return Tensor{Name: name, DataType: dt, Shape: cloneShape(shape), data: out}, nil
	}
	if want := n * dt.Size(); len(raw) != want {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: %v%v needs %d raw bytes, got %d", name, dt, shape, want, len(raw))
	}
	t := Tensor{Name: name, DataType: dt, Shape: cloneShape(shape), data: makeData(dt, n)}
	if b, ok := t.data.([]bool); ok {
		for i, c := range raw {
			b[i] = c != 0 // normalise: any non-zero byte is true
		}
		return t, nil
	}
	copy(t.RawBytes(), raw)
	return t, nil
}

func cloneShape(s []int64) []int64 { return append(make([]int64, 0, len(s)), s...) }
