package cache

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"

	"github.com/servekit/servekit/serving"
)

// The canonical key of a request is one byte string: model, version, the
// requested outputs, then each input's name, datatype, shape and raw data, all
// length-prefixed (u32 for strings and counts, u64 for dims and data sizes,
// little-endian) so that no two requests share an encoding. A miss builds it
// once (appendKey). The hit path does not: it hashes the request through a
// stack buffer (hashKey) and compares a stored key with the request piece by
// piece (keyEqual), so tensor data is read in place and nothing is allocated.

// appendKey appends req's canonical key to dst.
func appendKey(dst []byte, req *serving.Request) []byte {
	dst = appendString(dst, req.Model)
	dst = appendString(dst, req.Version)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(req.Outputs)))
	for _, o := range req.Outputs {
		dst = appendString(dst, o)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(req.Inputs)))
	for i := range req.Inputs {
		t := &req.Inputs[i]
		dst = appendString(dst, t.Name)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(t.DataType))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			dst = binary.LittleEndian.AppendUint64(dst, uint64(d))
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(t.RawSize()))
		if b, ok := t.Data().([][]byte); ok { // as Tensor.AppendRaw, which would let dst escape
			for _, e := range b {
				dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e)))
				dst = append(dst, e...)
			}
			continue
		}
		dst = append(dst, t.RawBytes()...)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// keySize is the length of req's canonical key.
func keySize(req *serving.Request) int {
	n := 4 + len(req.Model) + 4 + len(req.Version) + 4
	for _, o := range req.Outputs {
		n += 4 + len(o)
	}
	n += 4
	for i := range req.Inputs {
		t := &req.Inputs[i]
		n += 4 + len(t.Name) + 4 + 4 + 8*len(t.Shape) + 8 + t.RawSize()
	}
	return n
}

// hashKey is the default slot hash: maphash with a per-Cache random seed.
// It is fast (AES-based where the CPU has it) and, being keyed, resists
// inputs crafted to collide; it is not stable across processes, which L1 does
// not need (L2 names its keys by SHA-256 instead). It covers every part of
// the key, but not in the key's byte layout: the small fields go through one
// stack buffer and tensor data is hashed in place, which is several times
// faster than feeding the key piece by piece. Only the full key decides a
// hit, so the hash needs to be a function of the key, nothing more.
func hashKey(seed maphash.Seed, req *serving.Request) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [256]byte
	hdr := appendString(buf[:0], req.Model)
	hdr = appendString(hdr, req.Version)
	for _, o := range req.Outputs {
		hdr = appendString(hdr, o)
	}
	for i := range req.Inputs {
		t := &req.Inputs[i]
		hdr = appendString(hdr, t.Name)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(t.DataType)<<24|uint32(len(t.Shape)))
		for _, d := range t.Shape {
			hdr = binary.LittleEndian.AppendUint64(hdr, uint64(d))
		}
	}
	sum := maphash.Bytes(seed, hdr)
	for i := range req.Inputs {
		t := &req.Inputs[i]
		var part uint64
		if b, ok := t.Data().([][]byte); ok {
			var h maphash.Hash
			h.SetSeed(seed)
			for _, e := range b {
				h.Write(binary.LittleEndian.AppendUint32(buf[:0], uint32(len(e))))
				h.Write(e)
			}
			part = h.Sum64()
		} else {
			part = maphash.Bytes(seed, t.RawBytes()) // a zero-copy view for fixed-size types
		}
		// Order-dependent mixing of keyed hashes (a multiply-rotate step).
		sum = bits.RotateLeft64((sum^part)*0x9e3779b97f4a7c15, 29) ^ part
	}
	return sum
}

// keyEqual reports whether key is req's canonical key, without building it.
func keyEqual(key []byte, req *serving.Request) bool {
	k := keyReader{b: key, ok: true}
	k.str(req.Model)
	k.str(req.Version)
	k.u32(uint32(len(req.Outputs)))
	for _, o := range req.Outputs {
		k.str(o)
	}
	k.u32(uint32(len(req.Inputs)))
	for i := range req.Inputs {
		if !k.ok {
			return false
		}
		t := &req.Inputs[i]
		k.str(t.Name)
		k.u32(uint32(t.DataType))
		k.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			k.u64(uint64(d))
		}
		k.u64(uint64(t.RawSize()))
		if b, ok := t.Data().([][]byte); ok {
			for _, e := range b {
				k.u32(uint32(len(e)))
				k.bytes(e)
			}
			continue
		}
		k.bytes(t.RawBytes())
	}
	return k.ok && len(k.b) == 0
}

// keyReader matches a stored key against a request's parts in order.
type keyReader struct {
	b  []byte // not yet matched
	ok bool   // equal so far
}

func (k *keyReader) u32(v uint32) {
	if k.ok && len(k.b) >= 4 && binary.LittleEndian.Uint32(k.b) == v {
		k.b = k.b[4:]
		return
	}
	k.ok = false
}

func (k *keyReader) u64(v uint64) {
	if k.ok && len(k.b) >= 8 && binary.LittleEndian.Uint64(k.b) == v {
		k.b = k.b[8:]
		return
	}
	k.ok = false
}

func (k *keyReader) str(s string) {
	k.u32(uint32(len(s)))
	if k.ok && len(k.b) >= len(s) && string(k.b[:len(s)]) == s {
		k.b = k.b[len(s):]
		return
	}
	k.ok = false
}

func (k *keyReader) bytes(v []byte) {
	if k.ok && len(k.b) >= len(v) && string(k.b[:len(v)]) == string(v) {
		k.b = k.b[len(v):]
		return
	}
	k.ok = false
}

// cacheable reports whether every input's data agrees with its datatype and
// shape, so that equal keys really mean equal inputs. Tensors built with the
// serving constructors always do; a hand-assembled or altered one that does
// not goes to the model uncached, which rejects it. It does not allocate,
// unlike Tensor.Validate.
func cacheable(req *serving.Request) bool {
	for i := range req.Inputs {
		t := &req.Inputs[i]
		if !holds(t.DataType, t.Data()) {
			return false
		}
		n, err := serving.NumElements(t.Shape)
		if err != nil || n != int64(t.Len()) {
			return false
		}
	}
	return true
}

func holds(dt serving.DataType, data any) bool {
	switch data.(type) {
	case []bool:
		return dt == serving.Bool
	case []uint8:
		return dt == serving.Uint8
	case []uint16:
		return dt == serving.Uint16 || dt == serving.FP16 || dt == serving.BF16
	case []uint32:
		return dt == serving.Uint32
	case []uint64:
		return dt == serving.Uint64
	case []int8:
		return dt == serving.Int8
	case []int16:
		return dt == serving.Int16
	case []int32:
		return dt == serving.Int32
	case []int64:
		return dt == serving.Int64
	case []float32:
		return dt == serving.FP32
	case []float64:
		return dt == serving.FP64
	case [][]byte:
		return dt == serving.Bytes
	}
	return false
}
