package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"io"
	"math/bits"
	"slices"

	"github.com/servekit/servekit/serving"
)

// A request's key is what decides that two requests get the same answer:
// model, version, the model's content fingerprint, the requested outputs (in
// order), then each input's name, datatype, shape and raw data. In memory a
// key is the request itself, detached from its caller (a deep copy of its
// inputs: the one copy a miss makes), compared field by field (sameKey).
// Only L2 needs it as bytes, the canonical key: every part length-prefixed
// (u32 for strings and counts, u64 for dims and data sizes, little-endian),
// so that no two requests share an encoding. writeKey produces it, keyEqual
// compares stored bytes with a request, and the Redis name is its SHA-256.

// sameKey reports whether a with fingerprint afp and b with bfp have the
// same key. Tensor data compares by its raw bytes, so NaNs compare by their
// bits and -0 differs from +0, as the model would see them.
func sameKey(a *serving.Request, afp string, b *serving.Request, bfp string) bool {
	if a.Model != b.Model || a.Version != b.Version || afp != bfp ||
		!slices.Equal(a.Outputs, b.Outputs) || len(a.Inputs) != len(b.Inputs) {
		return false
	}
	for i := range a.Inputs {
		x, y := &a.Inputs[i], &b.Inputs[i]
		if x.Name != y.Name || x.DataType != y.DataType || !slices.Equal(x.Shape, y.Shape) || !sameData(x, y) {
			return false
		}
	}
	return true
}

// sameData compares two tensors of one datatype and shape, both cacheable.
func sameData(x, y *serving.Tensor) bool {
	if a, ok := x.Data().([][]byte); ok {
		b, _ := y.Data().([][]byte)
		return slices.EqualFunc(a, b, bytes.Equal)
	}
	return bytes.Equal(x.RawBytes(), y.RawBytes()) // zero-copy views
}

// writeKey writes the canonical key of req under fingerprint fp to w: the
// small fields through one stack buffer, tensor data in place.
func writeKey(w io.Writer, req *serving.Request, fp string) {
	var buf [64]byte
	str := func(s string) {
		w.Write(binary.LittleEndian.AppendUint32(buf[:0], uint32(len(s))))
		io.WriteString(w, s)
	}
	u32 := func(v uint32) { w.Write(binary.LittleEndian.AppendUint32(buf[:0], v)) }
	u64 := func(v uint64) { w.Write(binary.LittleEndian.AppendUint64(buf[:0], v)) }
	str(req.Model)
	str(req.Version)
	str(fp)
	u32(uint32(len(req.Outputs)))
	for _, o := range req.Outputs {
		str(o)
	}
	u32(uint32(len(req.Inputs)))
	for i := range req.Inputs {
		t := &req.Inputs[i]
		str(t.Name)
		u32(uint32(t.DataType))
		u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			u64(uint64(d))
		}
		u64(uint64(t.RawSize()))
		if b, ok := t.Data().([][]byte); ok { // as Tensor.AppendRaw, without a copy
			for _, e := range b {
				u32(uint32(len(e)))
				w.Write(e)
			}
			continue
		}
		w.Write(t.RawBytes())
	}
}

// appender is an io.Writer that appends to a byte slice.
type appender []byte

func (a *appender) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

func (a *appender) WriteString(s string) (int, error) {
	*a = append(*a, s...)
	return len(s), nil
}

// appendKey appends the canonical key of req under fp to dst.
func appendKey(dst []byte, req *serving.Request, fp string) []byte {
	a := appender(dst)
	writeKey(&a, req, fp)
	return a
}

// sumKey is the SHA-256 of the canonical key, computed without building it.
func sumKey(req *serving.Request, fp string) [sha256.Size]byte {
	h := sha256.New()
	writeKey(h, req, fp)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// keySize is the length of the canonical key of req under fp; it also
// stands for the memory a detached request holds.
func keySize(req *serving.Request, fp string) int {
	n := 4 + len(req.Model) + 4 + len(req.Version) + 4 + len(fp) + 4
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
func hashKey(seed maphash.Seed, req *serving.Request, fp string) uint64 {
	var buf [256]byte
	hdr := appendString(buf[:0], req.Model)
	hdr = appendString(hdr, req.Version)
	hdr = appendString(hdr, fp)
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

func appendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// keyEqual reports whether key is the canonical key of req under fp,
// without building it.
func keyEqual(key []byte, req *serving.Request, fp string) bool {
	k := keyReader{b: key, ok: true}
	k.str(req.Model)
	k.str(req.Version)
	k.str(fp)
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

// detach deep-copies what the key and the model read of req: the inputs'
// data, shapes and the slices that hold them. It is the one copy of the
// request's bytes that a miss makes: the computation runs on it (it may
// outlive the caller, who may then reuse its buffers, and a model may answer
// with memory of its request), and the stored entry keeps it as its key.
func detach(req *serving.Request) *serving.Request {
	own := req.Clone()
	for i := range own.Inputs {
		own.Inputs[i] = own.Inputs[i].Clone()
	}
	return own
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
