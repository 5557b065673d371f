package httpapi

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/servekit/servekit/serving"
)

// The tensor "data" arrays are the hot path of the JSON protocol, so they are
// scanned by hand from the raw bytes instead of through encoding/json's
// reflection and []any: numbers go straight from the body to a typed slice
// with strconv, without an allocation per element.

const maxDepth = 32

type scanner struct {
	b         []byte
	i         int
	dims      [maxDepth]int64
	seen      [maxDepth]bool
	leafDepth int
	n         int64 // leaves read
	max       int64 // most leaves allowed
}

func badData(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "data: "+format, args...)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// walk reads one value at depth, recording array lengths per depth so that
// ragged nesting is caught, and calls leaf for every non-array value.
func (s *scanner) walk(depth int, leaf func(*scanner) error) error {
	s.ws()
	if s.i >= len(s.b) {
		return badData("unexpected end")
	}
	if s.b[s.i] != '[' {
		if s.leafDepth < 0 {
			s.leafDepth = depth
		} else if s.leafDepth != depth {
			return badData("ragged nesting: values at depth %d and %d", s.leafDepth, depth)
		}
		if s.n++; s.n > s.max {
			return badData("more elements than the shape's %d", s.max)
		}
		return leaf(s)
	}
	if depth >= maxDepth {
		return badData("nested deeper than %d", maxDepth)
	}
	s.i++
	var count int64
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
	} else {
		for {
			if err := s.walk(depth+1, leaf); err != nil {
				return err
			}
			count++
			s.ws()
			if s.i >= len(s.b) {
				return badData("unexpected end")
			}
			c := s.b[s.i]
			s.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return badData("unexpected %q at offset %d", c, s.i-1)
			}
		}
	}
	if !s.seen[depth] {
		s.seen[depth], s.dims[depth] = true, count
	} else if s.dims[depth] != count {
		return badData("ragged nesting: arrays of %d and %d elements at depth %d", s.dims[depth], count, depth)
	}
	return nil
}

// token returns the number or literal at s.i.
func (s *scanner) token() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', ']', ' ', '\t', '\r', '\n':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// isNumber checks the characters of a JSON number, so strconv's extras
// ("inf", "0x1p3", "1_0") are not accepted from JSON.
func isNumber(tok []byte) bool {
	if len(tok) == 0 {
		return false
	}
	for _, c := range tok {
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

// float reads a JSON number, or one of the strings "NaN", "Infinity",
// "-Infinity" (the proto3 JSON spelling), at bits precision.
func (s *scanner) float(bits int) (float64, error) {
	if s.b[s.i] == '"' {
		v, err := s.string()
		if err != nil {
			return 0, err
		}
		switch string(v) {
		case "NaN":
			return math.NaN(), nil
		case "Infinity", "inf", "+Infinity":
			return math.Inf(1), nil
		case "-Infinity", "-inf":
			return math.Inf(-1), nil
		}
		return 0, badData("string %q where a number belongs", v)
	}
	tok := s.token()
	if !isNumber(tok) {
		return 0, badData("%q is not a number", tok)
	}
	f, err := strconv.ParseFloat(str(tok), bits)
	if err != nil {
		return 0, badData("%q: out of range or malformed", tok)
	}
	return f, nil
}

func (s *scanner) int(bits int) (int64, error) {
	tok := s.token()
	if !isNumber(tok) {
		return 0, badData("%q is not an integer", tok)
	}
	v, err := strconv.ParseInt(str(tok), 10, bits)
	if err == nil {
		return v, nil
	}
	// Clients that hold numbers as doubles write 3.0 or 1e3.
	f, ferr := strconv.ParseFloat(str(tok), 64)
	lim := math.Ldexp(1, bits-1)
	if ferr != nil || f != math.Trunc(f) || f < -lim || f >= lim {
		return 0, badData("%q is not an INT%d", tok, bits)
	}
	return int64(f), nil
}

func (s *scanner) uint(bits int) (uint64, error) {
	tok := s.token()
	if !isNumber(tok) {
		return 0, badData("%q is not an unsigned integer", tok)
	}
	v, err := strconv.ParseUint(str(tok), 10, bits)
	if err == nil {
		return v, nil
	}
	f, ferr := strconv.ParseFloat(str(tok), 64)
	if ferr != nil || f != math.Trunc(f) || f < 0 || f >= math.Ldexp(1, bits) {
		return 0, badData("%q is not a UINT%d", tok, bits)
	}
	return uint64(f), nil
}

func (s *scanner) bool() (bool, error) {
	switch tok := s.token(); string(tok) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, badData("%q is not a BOOL", tok)
	}
}

// string reads a JSON string into a new slice, rejecting invalid UTF-8.
func (s *scanner) string() ([]byte, error) {
	if s.b[s.i] != '"' {
		return nil, badData("%q where a string belongs", s.token())
	}
	start := s.i
	escaped := false
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			s.i = j + 1
			raw := s.b[start+1 : j]
			if !utf8.Valid(raw) {
				return nil, badData("string is not valid UTF-8")
			}
			if !escaped {
				return append([]byte(nil), raw...), nil
			}
			var out string
			if err := json.Unmarshal(s.b[start:j+1], &out); err != nil {
				return nil, badData("bad string escape")
			}
			return []byte(out), nil
		case c < 0x20:
			return nil, badData("control character in string")
		}
	}
	return nil, badData("unterminated string")
}

// parseData reads a flat or nested JSON array (or one scalar) of dt into a
// typed slice. want is the element count the declared shape implies; max
// bounds what is read before want can be checked.
func parseData(raw []byte, dt serving.DataType, want int64) (data any, dims []int64, err error) {
	s := &scanner{b: raw, leafDepth: -1, max: want}
	hint := int(min(want, 1<<16)) // a lying shape must not make us allocate
	var leaf func(*scanner) error
	switch dt {
	case serving.Bool:
		v := make([]bool, 0, hint)
		leaf = func(s *scanner) error { x, err := s.bool(); v = append(v, x); return err }
		defer func() { data = v }()
	case serving.Uint8:
		data, leaf = uints[uint8](hint, 8)
	case serving.Uint16:
		data, leaf = uints[uint16](hint, 16)
	case serving.Uint32:
		data, leaf = uints[uint32](hint, 32)
	case serving.Uint64:
		data, leaf = uints[uint64](hint, 64)
	case serving.Int8:
		data, leaf = ints[int8](hint, 8)
	case serving.Int16:
		data, leaf = ints[int16](hint, 16)
	case serving.Int32:
		data, leaf = ints[int32](hint, 32)
	case serving.Int64:
		data, leaf = ints[int64](hint, 64)
	case serving.FP32:
		v := make([]float32, 0, hint)
		leaf = func(s *scanner) error { x, err := s.float(32); v = append(v, float32(x)); return err }
		defer func() { data = v }()
	case serving.FP64:
		v := make([]float64, 0, hint)
		leaf = func(s *scanner) error { x, err := s.float(64); v = append(v, x); return err }
		defer func() { data = v }()
	case serving.FP16, serving.BF16:
		v := make([]uint16, 0, hint)
		enc, limit := serving.Float32ToFP16, 65520.0 // rounds to Inf from here
		if dt == serving.BF16 {
			enc, limit = serving.Float32ToBF16, math.MaxFloat32
		}
		leaf = func(s *scanner) error {
			x, err := s.float(64)
			if err == nil && !math.IsInf(x, 0) && math.Abs(x) >= limit {
				err = badData("%v is out of %v range", x, dt)
			}
			v = append(v, enc(float32(x)))
			return err
		}
		defer func() { data = v }()
	case serving.Bytes:
		v := make([][]byte, 0, hint)
		leaf = func(s *scanner) error { x, err := s.string(); v = append(v, x); return err }
		defer func() { data = v }()
	default:
		return nil, nil, badData("unsupported datatype %v", dt)
	}
	if err := s.walk(0, leaf); err != nil {
		return nil, nil, err
	}
	if s.ws(); s.i != len(s.b) {
		return nil, nil, badData("trailing characters after the array")
	}
	if s.leafDepth < 0 { // no values: the dims say it all
		s.leafDepth = 0
		for s.leafDepth < maxDepth && s.seen[s.leafDepth] {
			s.leafDepth++
		}
	}
	return data, s.dims[:s.leafDepth], nil
}

// typedSlice lets ints/uints hand back a slice that grows inside the closure.
type typedSlice[T any] struct{ v []T }

func ints[T int8 | int16 | int32 | int64](hint, bits int) (any, func(*scanner) error) {
	box := &typedSlice[T]{v: make([]T, 0, hint)}
	return box, func(s *scanner) error { x, err := s.int(bits); box.v = append(box.v, T(x)); return err }
}

func uints[T uint8 | uint16 | uint32 | uint64](hint, bits int) (any, func(*scanner) error) {
	box := &typedSlice[T]{v: make([]T, 0, hint)}
	return box, func(s *scanner) error { x, err := s.uint(bits); box.v = append(box.v, T(x)); return err }
}

// unbox turns what parseData returned into the plain slice.
func unbox(data any) any {
	switch b := data.(type) {
	case *typedSlice[int8]:
		return b.v
	case *typedSlice[int16]:
		return b.v
	case *typedSlice[int32]:
		return b.v
	case *typedSlice[int64]:
		return b.v
	case *typedSlice[uint8]:
		return b.v
	case *typedSlice[uint16]:
		return b.v
	case *typedSlice[uint32]:
		return b.v
	case *typedSlice[uint64]:
		return b.v
	}
	return data
}
