package cache

import (
	"encoding/binary"

	"github.com/servekit/servekit/serving"
)

// The L2 value format: compact, self-describing, versioned by its magic.
//
//	"SKC1" | expires u64 (unix ns, 0 never) | key: u32 len, bytes
//	| model, version: u32 len, bytes | u32 outputs
//	| per output: name (u32 len, bytes), dtype u8, rank u32, dims i64…,
//	  raw u64 len, bytes (serving's raw tensor encoding)
//
// Integers are little-endian. The full key travels with the value, so a
// reader compares it, as L1 does, and a (SHA-256) collision of Redis key
// names could never return another input's answer.
const codecMagic = "SKC1"

func encodeEntry(key []byte, resp *serving.Response, expires int64) []byte {
	n := len(codecMagic) + 8 + 4 + len(key) + 4 + len(resp.Model) + 4 + len(resp.Version) + 4
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		n += 4 + len(t.Name) + 1 + 4 + 8*len(t.Shape) + 8 + t.RawSize()
	}
	b := make([]byte, 0, n)
	b = append(b, codecMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(expires))
	b = appendBytes(b, key)
	b = appendBytes(b, []byte(resp.Model))
	b = appendBytes(b, []byte(resp.Version))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(resp.Outputs)))
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		b = appendBytes(b, []byte(t.Name))
		b = append(b, byte(t.DataType))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(t.RawSize()))
		b = t.AppendRaw(b)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

var errCorrupt = serving.Errorf(serving.Internal, "cache: corrupt L2 entry")

// decoder reads the format above; the first short read sets bad.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n uint64) []byte {
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) bytes() []byte { return d.take(uint64(d.u32())) }

// decodeEntry decodes a value, checking that it is stored under key. ok is
// false, with a nil error, for another key's value.
func decodeEntry(b, key []byte) (resp *serving.Response, expires int64, ok bool, err error) {
	d := decoder{b: b}
	if string(d.take(uint64(len(codecMagic)))) != codecMagic {
		return nil, 0, false, errCorrupt
	}
	expires = int64(d.u64())
	if k := d.bytes(); d.bad || string(k) != string(key) {
		if d.bad {
			return nil, 0, false, errCorrupt
		}
		return nil, 0, false, nil
	}
	resp = &serving.Response{Model: string(d.bytes()), Version: string(d.bytes())}
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b)) { // each output takes bytes: bounds the allocation
		return nil, 0, false, errCorrupt
	}
	resp.Outputs = make([]serving.Tensor, 0, n)
	for range n {
		name := string(d.bytes())
		var dt serving.DataType
		if v := d.take(1); v != nil {
			dt = serving.DataType(v[0])
		}
		rank := d.u32()
		if d.bad || uint64(rank)*8 > uint64(len(d.b)) {
			return nil, 0, false, errCorrupt
		}
		shape := make([]int64, rank)
		for i := range shape {
			shape[i] = int64(d.u64())
		}
		raw := d.take(d.u64())
		if d.bad {
			return nil, 0, false, errCorrupt
		}
		t, err := serving.FromRaw(name, dt, shape, raw)
		if err != nil {
			return nil, 0, false, errCorrupt
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	if d.bad || len(d.b) != 0 {
		return nil, 0, false, errCorrupt
	}
	return resp, expires, true, nil
}
