package oipjson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads JSON from b at i. It accepts exactly what json.Valid accepts
// (plus the UTF-8 check encoding/json leaves out): every method that consumes
// a value checks its syntax, so one pass both validates and decodes.
type scanner struct {
	b []byte
	i int
}

// syntaxError is malformed JSON (or invalid UTF-8): it aborts the decode.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func (s *scanner) syntax(msg string) error { return &syntaxError{msg, s.i} }

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

// next skips whitespace and returns the byte at s.i, 0 at the end.
func (s *scanner) next() byte {
	if s.ws(); s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// consume skips whitespace and c, reporting whether c was there.
func (s *scanner) consume(c byte) bool {
	if s.next() == c {
		s.i++
		return true
	}
	return false
}

// literal consumes word if it is at s.i.
func (s *scanner) literal(word string) bool {
	if s.literalAt(s.i, word) {
		s.i += len(word)
		return true
	}
	return false
}

// literalAt reports whether word is at offset i.
func (s *scanner) literalAt(i int, word string) bool {
	return len(s.b)-i >= len(word) && str(s.b[i:i+len(word)]) == word
}

// rawString consumes the string at s.i (which is '"') and returns its bytes
// between the quotes, still escaped, and whether it has escapes.
func (s *scanner) rawString() (raw []byte, escaped bool, err error) {
	start := s.i + 1
	for j := start; j < len(s.b); {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], escaped, nil
		case c == '\\':
			escaped = true
			if j+1 >= len(s.b) {
				s.i = len(s.b)
				return nil, false, s.syntax("unterminated string")
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
				continue
			case 'u':
				if j+6 <= len(s.b) && hex4(s.b[j+2:j+6]) >= 0 {
					j += 6
					continue
				}
			}
			s.i = j
			return nil, false, s.syntax("invalid escape in string")
		case c < 0x20:
			s.i = j
			return nil, false, s.syntax("control character in string")
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRune(s.b[j:])
			if r == utf8.RuneError && n == 1 {
				s.i = j
				return nil, false, &syntaxError{"invalid UTF-8 in string", j}
			}
			j += n
		}
	}
	s.i = len(s.b)
	return nil, false, s.syntax("unterminated string")
}

// string consumes a string and returns a new slice of its value.
func (s *scanner) string() ([]byte, error) {
	raw, esc, err := s.rawString()
	if err != nil {
		return nil, err
	}
	if !esc {
		return append([]byte(nil), raw...), nil
	}
	return unescape(raw), nil
}

// stringValue is string as a Go string.
func (s *scanner) stringValue() (string, error) {
	raw, esc, err := s.rawString()
	if err != nil || !esc {
		return string(raw), err
	}
	b := unescape(raw)
	return str(b), nil
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unescape decodes a checked string body as encoding/json does: a \u escape
// that is half a surrogate pair becomes U+FFFD.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
					out = utf8.AppendRune(out, d)
					i += 6
					continue
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, e)
		}
	}
	return out
}

// num is a JSON number just consumed: its text and, when it has at most 19
// significant digits and a small exponent, its decimal mantissa and exponent.
type num struct {
	tok  []byte
	mant uint64
	exp  int
	neg  bool
	fast bool // mant and exp hold the value
	frac bool // has a fraction or exponent part
}

// number consumes a JSON number at s.i; false (consuming nothing) if there
// is none.
func (s *scanner) number() (n num, ok bool) {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return n, false
	}
	digits := 0 // significant digits gathered in mant; leading zeros add none
	if b[i] == '0' {
		i++
	} else {
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			n.mant = n.mant*10 + uint64(b[i]-'0')
			digits++
		}
	}
	if i < len(b) && b[i] == '.' {
		n.frac = true
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return n, false
		}
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			n.mant = n.mant*10 + uint64(b[i]-'0')
			if n.mant != 0 {
				digits++
			}
			n.exp--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		n.frac = true
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return n, false
		}
		e := 0
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if e < 1e6 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		n.exp += e
	}
	n.fast = digits <= 19 // otherwise mant has overflowed
	n.tok = b[s.i:i]
	s.i = i
	return n, true
}

// int64 is the number as an int64 when it is written as one (as strconv.ParseInt would take it).
func (n *num) int64() (int64, bool) {
	switch {
	case !n.plainInt():
		return 0, false
	case n.mant <= 1<<63-1 && n.neg:
		return -int64(n.mant), true
	case n.mant <= 1<<63-1:
		return int64(n.mant), true
	case n.neg && n.mant == 1<<63:
		return -1 << 63, true
	}
	return 0, false
}

// plainInt: an integer written without fraction or exponent, in mant.
func (n *num) plainInt() bool { return n.fast && !n.frac }

var (
	pow10f32 = [...]float32{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}
	pow10f64 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
)

// exact is the value when one IEEE operation gives it correctly rounded:
// the mantissa and the power of ten are both exact at that precision
// (Clinger's fast path, as in strconv), which covers typical decimals such
// as 0.12 or -1.5 without strconv's general machinery.
func (n *num) exact(bits int) (float64, bool) {
	if !n.fast {
		return 0, false
	}
	var f float64
	if bits == 32 {
		if n.mant > 1<<24 || n.exp < -10 || n.exp > 10 {
			return 0, false
		}
		x := float32(n.mant)
		if n.exp < 0 {
			x = x / pow10f32[-n.exp]
		} else {
			x = x * pow10f32[n.exp]
		}
		f = float64(x)
	} else {
		if n.mant > 1<<53 || n.exp < -22 || n.exp > 22 {
			return 0, false
		}
		f = float64(n.mant)
		if n.exp < 0 {
			f = f / pow10f64[-n.exp]
		} else {
			f = f * pow10f64[n.exp]
		}
	}
	if n.neg {
		f = -f
	}
	return f, true
}

// skip consumes one JSON value of any kind, checking it; depth is the
// number of arrays and objects around it.
func (s *scanner) skip(depth int) error {
	switch s.next() {
	case '"':
		_, _, err := s.rawString()
		return err
	case '{', '[':
		return s.skipContainer(depth)
	case 't':
		if s.literal("true") {
			return nil
		}
	case 'f':
		if s.literal("false") {
			return nil
		}
	case 'n':
		if s.literal("null") {
			return nil
		}
	default:
		if _, ok := s.number(); ok {
			return nil
		}
	}
	return s.syntax("invalid value")
}

func (s *scanner) skipContainer(depth int) error {
	return s.container(depth, func([]byte, bool, int) error { return s.skip(depth + 1) })
}

// container reads the object or array at s.i, calling elem with s.i at each
// value (non-blank), with the key for an object's members; elem must consume
// the value. depth is the number of arrays and objects around this one.
func (s *scanner) container(depth int, elem func(key []byte, esc bool, i int) error) error {
	if depth >= maxNesting {
		return s.syntax("exceeded max nesting depth")
	}
	obj, end := s.b[s.i] == '{', byte(']')
	if obj {
		end = '}'
	}
	s.i++
	if s.consume(end) {
		return nil
	}
	for i := 0; ; i++ {
		var key []byte
		var esc bool
		if obj {
			if s.next() != '"' {
				return s.syntax("object key must be a string")
			}
			var err error
			if key, esc, err = s.rawString(); err != nil {
				return err
			}
			if !s.consume(':') {
				return s.syntax("missing colon after object key")
			}
		}
		if s.next() == 0 && s.i == len(s.b) {
			return s.syntax("unexpected end of JSON input")
		}
		if err := elem(key, esc, i); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if s.consume(end) {
			return nil
		}
		return s.syntax("missing comma or closing bracket")
	}
}

// object reads the object at s.i, calling member for each; see container.
func (s *scanner) object(depth int, member func(key []byte, esc bool) error) error {
	return s.container(depth, func(key []byte, esc bool, _ int) error { return member(key, esc) })
}

// array reads the array at s.i, calling elem for each; see container.
func (s *scanner) array(depth int, elem func(i int) error) error {
	return s.container(depth, func(_ []byte, _ bool, i int) error { return elem(i) })
}

var errTooManyValues = errors.New("too many values")

// anyValue decodes a value as encoding/json does into an interface:
// map[string]any, []any, string, float64, bool or nil. Every value it
// decodes, nested ones included, takes one from *left; it fails when none
// is left, since each costs tens of bytes of memory for a few of JSON.
func (s *scanner) anyValue(depth int, left *int) (any, error) {
	if *left--; *left < 0 {
		return nil, errTooManyValues
	}
	switch s.next() {
	case '{':
		m := map[string]any{}
		err := s.object(depth, func(key []byte, esc bool) error {
			k := string(key)
			if esc {
				k = string(unescape(key))
			}
			v, err := s.anyValue(depth+1, left)
			m[k] = v
			return err
		})
		return m, err
	case '[':
		a := []any{}
		err := s.array(depth, func(int) error {
			v, err := s.anyValue(depth+1, left)
			a = append(a, v)
			return err
		})
		return a, err
	case '"':
		return s.stringValue()
	case 't', 'f', 'n':
		switch {
		case s.literal("true"):
			return true, nil
		case s.literal("false"):
			return false, nil
		case s.literal("null"):
			return nil, nil
		}
	default:
		if n, ok := s.number(); ok {
			f, err := strconv.ParseFloat(str(n.tok), 64)
			if err != nil {
				return nil, badRequest("parameters: number %s is out of range", n.tok)
			}
			return f, nil
		}
	}
	return nil, s.syntax("invalid value")
}
