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
//
// raw is untrusted: the shape is checked against the bytes that are there
// before anything is allocated, so a shape that claims more than raw holds
// costs nothing. A tensor of fixed-size elements allocates exactly len(raw);
// a BYTES tensor one 24-byte slice header per element (each element takes at
// least its 4-byte length, so at most 6 × len(raw)) plus one buffer that all
// its elements share.
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
		return bytesFromRaw(name, shape, n, raw)
	}
	if want := n64 * int64(dt.Size()); int64(len(raw)) != want {
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

// bytesFromRaw decodes n length-prefixed BYTES elements. The first pass
// checks the framing and sums the lengths without allocating; the second
// copies every element into one buffer and slices it (capacity clipped, so
// appending to one element never overwrites the next).
func bytesFromRaw(name string, shape []int64, n int, raw []byte) (Tensor, error) {
	if n > len(raw)/4 {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: %d raw bytes cannot hold %d BYTES elements (4 bytes of length each)", name, len(raw), n)
	}
	total, rest := 0, raw
	for i := range n {
		if len(rest) < 4 {
			return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: raw BYTES truncated at element %d", name, i)
		}
		l := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(l) > uint64(len(rest)) {
			return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: raw BYTES element %d claims %d bytes, %d left", name, i, l, len(rest))
		}
		total += int(l)
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return Tensor{}, Errorf(InvalidArgument, "serving: tensor %q: %d bytes after %d BYTES elements", name, len(rest), n)
	}
	out, buf := make([][]byte, n), make([]byte, 0, total)
	rest = raw
	for i := range out {
		l := int(binary.LittleEndian.Uint32(rest))
		start := len(buf)
		buf = append(buf, rest[4:4+l]...)
		out[i] = buf[start:len(buf):len(buf)]
		rest = rest[4+l:]
	}
	return Tensor{Name: name, DataType: Bytes, Shape: cloneShape(shape), data: out}, nil
}

func cloneShape(s []int64) []int64 { return append(make([]int64, 0, len(s)), s...) }
