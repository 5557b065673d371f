package oipjson

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
	unshaped  bool  // max is a limit, not what a shape says
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
				if w.unshaped {
					return false, badData("more than the limit of %d elements", w.max)
				}
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
	dims, rank := w.dimsOf()
	return append([]int64{}, dims[:rank]...)
}

// dimsOf is shape without an allocation.
func (w *dataWalk) dimsOf() (dims [maxDepth]int64, rank int) {
	rank = w.leafDepth
	if rank < 0 { // no values: the dims say it all
		rank = 0
		for rank < maxDepth && w.seen[rank] {
			rank++
		}
	}
	copy(dims[:rank], w.dims[:rank])
	return dims, rank
}

// readValues reads the data array at s.i with parse, appending to v, at most
// w.max elements. v must have room for them all (see sizing): a data array
// never grows a slice, so what it allocates is what was sized for it.
func readValues[T any](s *scanner, w *dataWalk, v []T, parse func(*scanner) (T, error)) ([]T, error) {
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
		// The run of leaves that follows in the same array ("," then a
		// value that is not an array, under the count) is read here with
		// the bookkeeping nextLeaf would do; anything else (the array's
		// end, nesting, a syntax error, one leaf too many) goes back to
		// nextLeaf, from the comma, to be handled or reported as always.
		for w.depth > 0 && w.n < w.max {
			if s.ws(); s.i >= len(s.b) || s.b[s.i] != ',' {
				break
			}
			comma := s.i
			s.i++
			if s.ws(); s.i >= len(s.b) || s.b[s.i] == '[' {
				s.i = comma
				break
			}
			w.count[w.depth-1]++
			w.n++
			x, err := parse(s)
			if err != nil {
				return nil, err
			}
			v = append(v, x)
		}
	}
}

// walk walks the data array at s.i, at most max elements, checking its
// nesting and syntax but converting nothing, and leaves s.i where it was:
// the walk has the element count and the dims.
func (s *scanner) walk(max int64, unshaped bool) (dataWalk, error) {
	start := s.i
	w := dataWalk{needValue: true, leafDepth: -1, max: max, unshaped: unshaped}
	for {
		ok, err := s.nextLeaf(&w)
		if err != nil {
			return w, err
		}
		if !ok {
			break
		}
		if err := s.skip(maxDepth); err != nil {
			return w, err
		}
	}
	s.i = start
	return w, nil
}

func (s *scanner) countLeaves(max int64, unshaped bool) (int64, error) {
	w, err := s.walk(max, unshaped)
	return w.n, err
}

// A budget is what is left of a body's JSON bytes for data arrays sized
// from their shape. An array whose shape claims n elements gets room for all
// n at once when its share of the JSON, n elements at the fewest bytes each
// can be written in (minBytes), is still left. Every honest request fits,
// since its arrays lie side by side in the JSON; shapes that lie cannot
// reserve more than the JSON could hold, so the data of a request never
// costs more than len(JSON) / minBytes elements (8 bytes of memory per JSON
// byte at worst: BYTES, a 24-byte slice header per `"",`).
type budget struct{ left int64 }

func (b *budget) take(c int64) bool {
	if c > b.left {
		return false
	}
	b.left -= c
	return true
}

// minBytes is the fewest JSON bytes an element of dt takes with its comma:
// `0,` for numbers, `"",` for BYTES, `true,` for BOOL.
func minBytes(dt serving.DataType) int64 {
	switch dt {
	case serving.Bytes:
		return 3
	case serving.Bool:
		return 5
	}
	return 2
}

// claimCost is what n elements of at least m bytes take in the JSON: the
// last has no comma.
func claimCost(n, m int64) int64 { return max(n*m-1, 0) }

// sizing decides how much a data array may allocate before its elements are
// read: the request's inline room when they fit, else what its shape claims
// when the budget covers it, else (no shape, no budget, or a claim the
// budget refuses) a count of the elements really there.
type sizing struct {
	room *[]uint64 // the request's spare words; nil for none
	bud  *budget   // nil: always count
	cost int64     // charged to bud by the last read, for a refund
}

// size returns the capacity to allocate for a data array at s.i with want
// elements claimed (claimed: from a shape) or allowed (no shape).
func (z *sizing) size(s *scanner, shape []int64, want int64, dt serving.DataType) (int64, error) {
	z.cost = 0
	if shape != nil && z.bud != nil {
		if c := claimCost(want, minBytes(dt)); z.bud.take(c) {
			z.cost = c
			return want, nil
		}
	}
	n, err := s.countLeaves(want, shape == nil)
	if err != nil {
		return 0, err
	}
	switch {
	case shape == nil:
		return n, nil
	case n != want:
		return 0, countMismatch(shape, want, n)
	case z.bud != nil: // the data is there, but earlier shapes claimed the JSON
		return 0, badData("shape %v: the request's shapes claim more elements than its JSON holds", shape)
	}
	return n, nil
}

func countMismatch(shape []int64, want, got int64) error {
	return badData("shape %v holds %d elements, data has %d", shape, want, got)
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
// shape takes the shape the nesting implies, up to want elements.
func readTensor[T any](s *scanner, name string, dt serving.DataType, shape []int64, want int64, z *sizing,
	parse func(*scanner) (T, error), mk func(string, []int64, []T) (serving.Tensor, error)) (serving.Tensor, error) {
	z.cost = 0
	v := carve[T](z.room, want)
	if v == nil {
		n, err := z.size(s, shape, want, dt)
		if err != nil {
			return serving.Tensor{}, err
		}
		v = make([]T, 0, n)
	}
	w := dataWalk{needValue: true, leafDepth: -1, max: int64(cap(v)), unshaped: shape == nil}
	v, err := readValues(s, &w, v, parse)
	if err != nil {
		return serving.Tensor{}, err
	}
	if shape == nil {
		shape = w.shape()
	} else if int64(len(v)) != want {
		return serving.Tensor{}, countMismatch(shape, want, int64(len(v)))
	}
	return mk(name, shape, v)
}

// elemCodec reads the data of one datatype: a whole tensor, or rows
// appended to a column (V1 named instances).
type elemCodec struct {
	read   func(s *scanner, name string, dt serving.DataType, shape []int64, want int64, z *sizing) (serving.Tensor, error)
	column func(n int64) column
}

func codecOf[T any](parse func(*scanner) (T, error), mk func(string, []int64, []T) (serving.Tensor, error)) elemCodec {
	return elemCodec{
		read: func(s *scanner, name string, dt serving.DataType, shape []int64, want int64, z *sizing) (serving.Tensor, error) {
			return readTensor(s, name, dt, shape, want, z, parse, mk)
		},
		column: func(n int64) column { return &typedColumn[T]{v: make([]T, 0, n), parse: parse, mk: mk} },
	}
}

var codecs = [...]elemCodec{
	serving.FP32:   codecOf(parseFP32, serving.NewTensor[float32]),
	serving.FP64:   codecOf(parseFP64, serving.NewTensor[float64]),
	serving.FP16:   codecOf(parseFP16, serving.NewFP16),
	serving.BF16:   codecOf(parseBF16, serving.NewBF16),
	serving.Int8:   codecOf(parseInt[int8], serving.NewTensor[int8]),
	serving.Int16:  codecOf(parseInt[int16], serving.NewTensor[int16]),
	serving.Int32:  codecOf(parseInt[int32], serving.NewTensor[int32]),
	serving.Int64:  codecOf(parseInt[int64], serving.NewTensor[int64]),
	serving.Uint8:  codecOf(parseUint[uint8], serving.NewTensor[uint8]),
	serving.Uint16: codecOf(parseUint[uint16], serving.NewTensor[uint16]),
	serving.Uint32: codecOf(parseUint[uint32], serving.NewTensor[uint32]),
	serving.Uint64: codecOf(parseUint[uint64], serving.NewTensor[uint64]),
	serving.Bool:   codecOf(parseBool, serving.NewTensor[bool]),
	serving.Bytes:  codecOf(parseBytes, serving.NewTensor[[]byte]),
}

func codecFor(dt serving.DataType) (elemCodec, bool) {
	if int(dt) < len(codecs) && codecs[dt].read != nil {
		return codecs[dt], true
	}
	return elemCodec{}, false
}

// readData reads the "data" value at s.i as a tensor of dt: want elements
// when shape is given, else the shape the nesting implies, up to want.
func readData(s *scanner, name string, dt serving.DataType, shape []int64, want int64, z *sizing) (serving.Tensor, error) {
	if c, ok := codecFor(dt); ok {
		return c.read(s, name, dt, shape, want, z)
	}
	return serving.Tensor{}, badData("unsupported datatype %v", dt)
}

// column collects the rows of one input, sized beforehand.
type column interface {
	// read appends the values of the array at s.i: no more than the room
	// left, since the column was sized from a count of them all.
	read(s *scanner) error
	tensor(name string, shape []int64) (serving.Tensor, error)
}

type typedColumn[T any] struct {
	v     []T
	parse func(*scanner) (T, error)
	mk    func(string, []int64, []T) (serving.Tensor, error)
}

func (c *typedColumn[T]) read(s *scanner) error {
	w := dataWalk{needValue: true, leafDepth: -1, max: int64(cap(c.v) - len(c.v)), unshaped: true}
	v, err := readValues(s, &w, c.v, c.parse)
	if err != nil {
		return err
	}
	c.v = v
	return nil
}

func (c *typedColumn[T]) tensor(name string, shape []int64) (serving.Tensor, error) {
	return c.mk(name, shape, c.v)
}

// parseTensor reads raw, one complete JSON value, as a tensor of dt, sized
// from a count of its elements.
func parseTensor(raw []byte, name string, dt serving.DataType, shape []int64, want int64) (serving.Tensor, error) {
	s := scanner{b: raw}
	t, err := readData(&s, name, dt, shape, want, &sizing{})
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
