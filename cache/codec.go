package cache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"github.com/servekit/servekit/serving"
)

// The L2 value format: compact, self-describing, versioned by its magic,
// authenticated by its tag.
//
//	"SKC2" | expires u64 (unix ns, 0 never) | key: u32 len, bytes
//	| model, version: u32 len, bytes | u32 outputs
//	| per output: name (u32 len, bytes), dtype u8, rank u32, dims u64…,
//	  raw u64 len, bytes (serving's raw tensor encoding)
//	| tag: HMAC-SHA256 of everything before it (32 bytes)
//
// Integers are little-endian. The full key travels with the value, so a
// reader compares it, as L1 does: a (SHA-256) collision of Redis key names
// could never return another input's answer, and a valid entry cannot be
// moved under another key. The tag is checked before anything else is read
// (in constant time), so a reader parses only what a holder of the key
// wrote; the parser is bounds-checked all the same, for a leaked key and
// for the unauthenticated mode.
const codecMagic = "SKC2"

const (
	tagSize = sha256.Size
	// minValue is the shortest well-formed value: magic, expiry, empty key,
	// model and version, no outputs, tag.
	minValue = len(codecMagic) + 8 + 4 + 4 + 4 + 4 + tagSize
	// minOutput is the fewest bytes an output takes: empty name, dtype,
	// rank 0, raw length 0. It bounds the outputs a value can claim.
	minOutput = 4 + 1 + 4 + 8
	// maxRank bounds an output's dimensions, as ONNX Runtime does (its
	// shapes are far shorter in practice).
	maxRank = 64
)

// decodeBudget is the most a decode may allocate for a value of n bytes:
// the response, its tensors' headers and their data. An output claims at
// least minOutput bytes and a BYTES element at least 4, and each costs a
// fixed header, so the ratio is bounded whatever the value claims; tests
// and the fuzz target hold decodeEntry to it.
func decodeBudget(n int) uint64 { return 8*uint64(n) + 4<<10 }

// encodeEntry encodes resp, the answer to key under fp, with its tag under
// macKey.
func encodeEntry(key *serving.Request, fp string, resp *serving.Response, expires int64, macKey []byte) []byte {
	ks := keySize(key, fp)
	n := len(codecMagic) + 8 + 4 + ks + 4 + len(resp.Model) + 4 + len(resp.Version) + 4 + tagSize
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		n += 4 + len(t.Name) + 1 + 4 + 8*len(t.Shape) + 8 + t.RawSize()
	}
	b := make([]byte, 0, n)
	b = append(b, codecMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(expires))
	b = binary.LittleEndian.AppendUint32(b, uint32(ks))
	b = appendKey(b, key, fp)
	b = appendString(b, resp.Model)
	b = appendString(b, resp.Version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(resp.Outputs)))
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		b = appendString(b, t.Name)
		b = append(b, byte(t.DataType))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(t.RawSize()))
		b = t.AppendRaw(b)
	}
	return sign(b, macKey)
}

// sign appends the tag of b under key.
func sign(b, key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(b)
}

// verify reports whether b ends with a valid tag under one of keys, and
// returns the body before it.
func verify(b []byte, keys [][]byte) ([]byte, bool) {
	if len(b) < tagSize {
		return nil, false
	}
	body, tag := b[:len(b)-tagSize], b[len(b)-tagSize:]
	var sum [tagSize]byte
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write(body)
		if hmac.Equal(m.Sum(sum[:0]), tag) {
			return body, true
		}
	}
	return nil, false
}

// Why a stored value is rejected; each is a miss, counted, and the value is
// deleted.
var (
	errCorrupt   = serving.Errorf(serving.Internal, "cache: malformed L2 entry")
	errForged    = serving.Errorf(serving.Internal, "cache: L2 entry fails authentication")
	errOversized = serving.Errorf(serving.Internal, "cache: L2 entry larger than the entry bound")
)

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
	v := d.b[:n:n]
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

// decodeEntry authenticates b with keys, then decodes it, checking that it
// answers req under fp. ok is false, with a nil error, for another key's
// value (a valid entry, not ours). It never allocates from a count, length or
// shape the value claims before the bytes that back it are there: at most
// decodeBudget(len(b)). BYTES elements alias b, which the caller gives up.
func decodeEntry(b []byte, req *serving.Request, fp string, keys [][]byte) (resp *serving.Response, expires int64, ok bool, err error) {
	if len(b) < minValue || string(b[:len(codecMagic)]) != codecMagic {
		return nil, 0, false, errCorrupt
	}
	body, valid := verify(b, keys)
	if !valid {
		return nil, 0, false, errForged
	}
	d := decoder{b: body[len(codecMagic):]}
	expires = int64(d.u64())
	if k := d.bytes(); d.bad || !keyEqual(k, req, fp) {
		if d.bad {
			return nil, 0, false, errCorrupt
		}
		return nil, 0, false, nil
	}
	model, version := d.bytes(), d.bytes()
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b))/minOutput {
		return nil, 0, false, errCorrupt
	}
	resp = &serving.Response{Model: string(model), Version: string(version), Outputs: make([]serving.Tensor, 0, n)}
	for range n {
		t, err := d.tensor()
		if err != nil {
			return nil, 0, false, err
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	if d.bad || len(d.b) != 0 {
		return nil, 0, false, errCorrupt
	}
	return resp, expires, true, nil
}

// tensor decodes one output, checking that its bytes back its shape before
// anything of the shape's size is allocated.
func (d *decoder) tensor() (serving.Tensor, error) {
	name := d.bytes()
	var dt serving.DataType
	if v := d.take(1); v != nil {
		dt = serving.DataType(v[0])
	}
	rank := d.u32()
	if d.bad || rank > maxRank || uint64(rank)*8 > uint64(len(d.b)) || !dt.Valid() {
		return serving.Tensor{}, errCorrupt
	}
	shape := make([]int64, rank)
	for i := range shape {
		shape[i] = int64(d.u64())
	}
	raw := d.take(d.u64())
	if d.bad {
		return serving.Tensor{}, errCorrupt
	}
	n, err := serving.NumElements(shape)
	if err != nil {
		return serving.Tensor{}, errCorrupt
	}
	if dt != serving.Bytes {
		if uint64(n)*uint64(dt.Size()) != uint64(len(raw)) {
			return serving.Tensor{}, errCorrupt
		}
		t, err := serving.FromRaw(string(name), dt, shape, raw) // copies len(raw)
		if err != nil {
			return serving.Tensor{}, errCorrupt
		}
		return t, nil
	}
	// BYTES: count the elements the bytes hold first (each takes at least
	// its 4-byte length), then slice them out of raw without copying.
	count := uint64(0)
	for rest := raw; len(rest) > 0; count++ {
		if len(rest) < 4 || uint64(binary.LittleEndian.Uint32(rest)) > uint64(len(rest)-4) {
			return serving.Tensor{}, errCorrupt
		}
		rest = rest[4+binary.LittleEndian.Uint32(rest):]
	}
	if count != uint64(n) {
		return serving.Tensor{}, errCorrupt
	}
	elems := make([][]byte, n)
	for i := range elems {
		l := binary.LittleEndian.Uint32(raw)
		elems[i] = raw[4 : 4+l : 4+l]
		raw = raw[4+l:]
	}
	t, err := serving.FromSlice(string(name), serving.Bytes, shape, elems)
	if err != nil {
		return serving.Tensor{}, errCorrupt
	}
	return t, nil
}
