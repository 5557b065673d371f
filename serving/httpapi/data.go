package httpapi

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/servekit/servekit/serving"
)

// The tensor "data" arrays are the hot path of the JSON protocol, so they are
// scanned by hand: numbers go straight from the body to a typed slice, without
// an allocation per element. The reader is strict JSON (it accepts nothing
// json.Valid would refuse), because the V2 envelope decoder relies on it to
// validate the "data" value in the same pass.

// maxDepth bounds the nesting of a "data" array (a tensor of rank 32 is
// already absurd); maxNesting is encoding/json's limit for any JSON value.
const (
	maxDepth   = 32
	maxNesting = 10000
)

func badData(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "data: "+format, args...)
}

func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// dataWalk is the state of one walk over a nested array: element counts per
// depth, so that ragged nesting is caught, and the depth of the leaves.
type dataWalk struct {
	depth     int // arrays open
	needValue bool
	dims      [maxDepth]int64
	count     [maxDepth]int64
	seen      [maxDepth]bool
	leafDepth int
	n, max    int64 // leaves read, most allowed
}

// nextLeaf moves to the next non-array value of the data array (or scalar)
// starting at s.i, and reports false after the closing bracket. The caller
// reads the leaf, then calls nextLeaf again.
func (s *scanner) nextLeaf(w *dataWalk) (bool, error) {
	for {
		if w.needValue {
			s.ws()
			if s.i >= len(s.b) {
				return false, badData("unexpected end")
			}
			if s.b[s.i] == '[' {
				if w.depth >= maxDepth {
					return false, badData("nested deeper than %d", maxDepth)
				}
				s.i++
				w.count[w.depth] = 0
				if s.ws(); s.i < len(s.b) && s.b[s.i] == ']' { // empty: done with this value
					s.i++
					if err := w.closeArray(w.depth); err != nil {
						return false, err
					}
					w.needValue = false
					continue
				}
				w.depth++
				continue
			}
			if w.leafDepth < 0 {
				w.leafDepth = w.depth
			} else if w.leafDepth != w.depth {
				return false, badData("ragged nesting: values at depth %d and %d", w.leafDepth, w.depth)
			}
			if w.n++; w.n > w.max {
				return false, badData("more elements than the shape's %d", w.max)
			}
			w.needValue = false
			return true, nil
		}
		// A value has ended at w.depth.
		if w.depth == 0 {
			return false, nil
		}
		a := w.depth - 1 // the array it belongs to
		w.count[a]++
		if s.ws(); s.i >= len(s.b) {
			return false, badData("unexpected end")
		}
		switch c := s.b[s.i]; c {
		case ',':
			s.i++
			w.needValue = true
		case ']':
			s.i++
			if err := w.closeArray(a); err != nil {
				return false, err
			}
			w.depth--
		default:
			return false, badData("unexpected %q at offset %d", c, s.i)
		}
	}
}

func (w *dataWalk) closeArray(a int) error {
	if !w.seen[a] {
		w.seen[a], w.dims[a] = true, w.count[a]
	} else if w.dims[a] != w.count[a] {
		return badData("ragged nesting: arrays of %d and %d elements at depth %d", w.dims[a], w.count[a], a)
	}
	return nil
}

// shape is what the nesting implies (used by the V1 adapters).
func (w *dataWalk) shape() []int64 {
	if w.leafDepth < 0 { // no values: the dims say it all
		w.leafDepth = 0
		for w.leafDepth < maxDepth && w.seen[w.leafDepth] {
			w.leafDepth++
		}
	}
	return append([]int64(nil), w.dims[:w.leafDepth]...)
}

// readValues reads the data array at s.i with parse, appending to v, at most
// w.max elements. A nil v is made with room for w.max, up to a bound a lying
// shape cannot exceed.
func readValues[T any](s *scanner, w *dataWalk, v []T, parse func(*scanner) (T, error)) ([]T, error) {
	if v == nil {
		v = make([]T, 0, int(min(w.max, 1<<16)))
	}
	for {
		ok, err := s.nextLeaf(w)
		if err != nil {
			return nil, err
		}
		if !ok {
			return v, nil
		}
		x, err := parse(s)
		if err != nil {
			return nil, err
		}
		v = append(v, x)
	}
}

// carve takes room for want elements of T from the front of room, when
// there is enough and T holds no pointers (not BYTES); else nil.
func carve[T any](room *[]uint64, want int64) []T {
	if room == nil {
		return nil
	}
	if _, ptrs := any(*new(T)).([]byte); ptrs {
		return nil
	}
	words := (want*int64(unsafe.Sizeof(*new(T))) + 7) / 8
	if want == 0 || words > int64(len(*room)) {
		return nil
	}
	v := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(*room))), want)[:0:want]
	*room = (*room)[words:]
	return v
}

// readTensor reads a data array of T and builds the tensor with mk. A nil
// shape takes the shape the nesting implies.
func readTensor[T any](s *scanner, name string, shape []int64, want int64, room *[]uint64,
	parse func(*scanner) (T, error), mk func(string, []int64, []T) (serving.Tensor, error)) (serving.Tensor, error) {
	w := dataWalk{needValue: true, leafDepth: -1, max: want}
	v, err := readValues(s, &w, carve[T](room, want), parse)
	if err != nil {
		return serving.Tensor{}, err
	}
	if shape == nil {
		shape = w.shape()
	}
	return mk(name, shape, v)
}

// dataReader reads a "data" value as a tensor of one datatype.
type dataReader func(s *scanner, name string, shape []int64, want int64, room *[]uint64) (serving.Tensor, error)

func reader[T any](parse func(*scanner) (T, error), mk func(string, []int64, []T) (serving.Tensor, error)) dataReader {
	return func(s *scanner, name string, shape []int64, want int64, room *[]uint64) (serving.Tensor, error) {
		return readTensor(s, name, shape, want, room, parse, mk)
	}
}

var dataReaders = [...]dataReader{
	serving.FP32:   reader(parseFP32, serving.NewTensor[float32]),
	serving.FP64:   reader(parseFP64, serving.NewTensor[float64]),
	serving.FP16:   reader(parseFP16, serving.NewFP16),
	serving.BF16:   reader(parseBF16, serving.NewBF16),
	serving.Int8:   reader(parseInt[int8], serving.NewTensor[int8]),
	serving.Int16:  reader(parseInt[int16], serving.NewTensor[int16]),
	serving.Int32:  reader(parseInt[int32], serving.NewTensor[int32]),
	serving.Int64:  reader(parseInt[int64], serving.NewTensor[int64]),
	serving.Uint8:  reader(parseUint[uint8], serving.NewTensor[uint8]),
	serving.Uint16: reader(parseUint[uint16], serving.NewTensor[uint16]),
	serving.Uint32: reader(parseUint[uint32], serving.NewTensor[uint32]),
	serving.Uint64: reader(parseUint[uint64], serving.NewTensor[uint64]),
	serving.Bool:   reader(parseBool, serving.NewTensor[bool]),
	serving.Bytes:  reader(parseBytes, serving.NewTensor[[]byte]),
}

// readData reads the "data" value at s.i as a tensor of dt.
func readData(s *scanner, name string, dt serving.DataType, shape []int64, want int64, room *[]uint64) (serving.Tensor, error) {
	if int(dt) < len(dataReaders) && dataReaders[dt] != nil {
		return dataReaders[dt](s, name, shape, want, room)
	}
	return serving.Tensor{}, badData("unsupported datatype %v", dt)
}

// parseTensor reads raw, one complete JSON value, as a tensor of dt (the V1
// adapters, whose envelope encoding/json has already checked).
func parseTensor(raw []byte, name string, dt serving.DataType, shape []int64, want int64) (serving.Tensor, error) {
	s := scanner{b: raw}
	t, err := readData(&s, name, dt, shape, want, nil)
	if err != nil {
		return serving.Tensor{}, err
	}
	if s.ws(); s.i != len(s.b) {
		return serving.Tensor{}, badData("trailing characters after the array")
	}
	return t, nil
}

// notNumber explains a value where a number belongs.
func (s *scanner) notNumber(what string) error {
	if s.b[s.i] == '"' {
		v, err := s.string()
		if err != nil {
			return err
		}
		return badData("string %q where a number belongs", v)
	}
	return badData("%q is not %s", s.token(), what)
}

// token returns the bytes up to the next delimiter, for error messages.
func (s *scanner) token() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', ']', '}', ' ', '\t', '\r', '\n':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

// float reads a JSON number, or one of the strings "NaN", "Infinity",
// "-Infinity" (the proto3 JSON spelling), at bits precision.
func (s *scanner) float(bits int) (float64, error) {
	if s.b[s.i] == '"' {
		start := s.i
		v, err := s.string()
		if err != nil {
			return 0, err
		}
		switch str(v) {
		case "NaN":
			return math.NaN(), nil
		case "Infinity", "inf", "+Infinity":
			return math.Inf(1), nil
		case "-Infinity", "-inf":
			return math.Inf(-1), nil
		}
		s.i = start
		return 0, s.notNumber("a number")
	}
	n, ok := s.number()
	if !ok {
		return 0, s.notNumber("a number")
	}
	if f, ok := n.exact(bits); ok {
		return f, nil
	}
	// strconv does not allocate on success, and copies the string into its
	// error, so a string over the body is safe here.
	f, err := strconv.ParseFloat(str(n.tok), bits)
	if err != nil {
		return 0, badData("%q: out of range or malformed", n.tok)
	}
	return f, nil
}

func parseFP32(s *scanner) (float32, error) { f, err := s.float(32); return float32(f), err }
func parseFP64(s *scanner) (float64, error) { return s.float(64) }

func parseFP16(s *scanner) (uint16, error) {
	return halfFloat(s, serving.Float32ToFP16, 65520, serving.FP16) // 65520 rounds to Inf
}

func parseBF16(s *scanner) (uint16, error) {
	return halfFloat(s, serving.Float32ToBF16, math.MaxFloat32, serving.BF16)
}

func halfFloat(s *scanner, enc func(float32) uint16, limit float64, dt serving.DataType) (uint16, error) {
	x, err := s.float(64)
	if err == nil && !math.IsInf(x, 0) && math.Abs(x) >= limit {
		err = badData("%v is out of %v range", x, dt)
	}
	return enc(float32(x)), err
}

func parseInt[T int8 | int16 | int32 | int64](s *scanner) (T, error) {
	bits := int(unsafe.Sizeof(T(0))) * 8
	n, ok := s.number()
	if !ok {
		return 0, s.notNumber("an integer")
	}
	if n.plainInt() && n.mant < 1<<(bits-1) {
		if n.neg {
			return -T(n.mant), nil
		}
		return T(n.mant), nil
	}
	v, err := strconv.ParseInt(str(n.tok), 10, bits)
	if err == nil {
		return T(v), nil
	}
	// Clients that hold numbers as doubles write 3.0 or 1e3.
	f, ferr := strconv.ParseFloat(str(n.tok), 64)
	lim := math.Ldexp(1, bits-1)
	if ferr != nil || f != math.Trunc(f) || f < -lim || f >= lim {
		return 0, badData("%q is not an INT%d", n.tok, bits)
	}
	return T(f), nil
}

func parseUint[T uint8 | uint16 | uint32 | uint64](s *scanner) (T, error) {
	bits := int(unsafe.Sizeof(T(0))) * 8
	n, ok := s.number()
	if !ok {
		return 0, s.notNumber("an unsigned integer")
	}
	if n.plainInt() && !n.neg && (bits == 64 || n.mant < 1<<bits) {
		return T(n.mant), nil
	}
	v, err := strconv.ParseUint(str(n.tok), 10, bits)
	if err == nil {
		return T(v), nil
	}
	f, ferr := strconv.ParseFloat(str(n.tok), 64)
	if ferr != nil || f != math.Trunc(f) || f < 0 || f >= math.Ldexp(1, bits) {
		return 0, badData("%q is not a UINT%d", n.tok, bits)
	}
	return T(f), nil
}

func parseBool(s *scanner) (bool, error) {
	switch {
	case s.literal("true"):
		return true, nil
	case s.literal("false"):
		return false, nil
	}
	return false, badData("%q is not a BOOL", s.token())
}

func parseBytes(s *scanner) ([]byte, error) {
	if s.b[s.i] != '"' {
		return nil, badData("%q where a string belongs", s.token())
	}
	return s.string()
}
