package cache

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/servekit/servekit/serving"
)

// The canonical key of a request is one byte string: model, version, the
// requested outputs, then each input's name, datatype, shape and raw data, all
// length-prefixed so that no two requests share an encoding. It is produced in
// one pass by encodeKey into a sink, which either hashes it, appends it to a
// buffer, or compares it with a stored key. So the hit path hashes the tensor
// bytes in place and compares them with the stored key without building the
// key at all; only a miss materialises it, once.

type sinkMode uint8

const (
	sinkHash sinkMode = iota
	sinkAppend
	sinkEqual
)

type sink struct {
	mode sinkMode
	ok   bool   // sinkEqual: equal so far
	buf  []byte // sinkAppend: the key so far; sinkEqual: the stored key not yet matched
	h    maphash.Hash
}

func (s *sink) bytes(b []byte) {
	switch s.mode {
	case sinkHash:
		s.h.Write(b)
	case sinkAppend:
		s.buf = append(s.buf, b...)
	case sinkEqual:
		if !s.ok || len(s.buf) < len(b) || string(s.buf[:len(b)]) != string(b) {
			s.ok = false
			return
		}
		s.buf = s.buf[len(b):]
	}
}

func (s *sink) str(v string) {
	s.u32(uint32(len(v)))
	switch s.mode {
	case sinkHash:
		s.h.WriteString(v)
	case sinkAppend:
		s.buf = append(s.buf, v...)
	case sinkEqual:
		if !s.ok || len(s.buf) < len(v) || string(s.buf[:len(v)]) != v {
			s.ok = false
			return
		}
		s.buf = s.buf[len(v):]
	}
}

func (s *sink) u32(v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	s.bytes(b[:])
}

func (s *sink) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	s.bytes(b[:])
}

// encodeKey writes the canonical key of req to s.
func encodeKey(s *sink, req *serving.Request) {
	s.str(req.Model)
	s.str(req.Version)
	s.u32(uint32(len(req.Outputs)))
	for _, o := range req.Outputs {
		s.str(o)
	}
	s.u32(uint32(len(req.Inputs)))
	for i := range req.Inputs {
		t := &req.Inputs[i]
		s.str(t.Name)
		s.u32(uint32(t.DataType))
		s.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			s.u64(uint64(d))
		}
		if b, ok := t.Data().([][]byte); ok {
			// BYTES: element by element, so nothing is encoded into a new
			// buffer as RawBytes would. Same bytes as the raw encoding.
			s.u64(uint64(t.RawSize()))
			for _, e := range b {
				s.u32(uint32(len(e)))
				s.bytes(e)
			}
			continue
		}
		raw := t.RawBytes() // zero-copy view for fixed-size types
		s.u64(uint64(len(raw)))
		s.bytes(raw)
	}
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
// not need (L2 names its keys by SHA-256 instead).
func hashKey(seed maphash.Seed, req *serving.Request) uint64 {
	s := sink{mode: sinkHash}
	s.h.SetSeed(seed)
	encodeKey(&s, req)
	return s.h.Sum64()
}

// appendKey appends req's canonical key to dst.
func appendKey(dst []byte, req *serving.Request) []byte {
	s := sink{mode: sinkAppend, buf: dst}
	encodeKey(&s, req)
	return s.buf
}

// keyEqual reports whether key is req's canonical key, without building it.
func keyEqual(key []byte, req *serving.Request) bool {
	s := sink{mode: sinkEqual, ok: true, buf: key}
	encodeKey(&s, req)
	return s.ok && len(s.buf) == 0
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
