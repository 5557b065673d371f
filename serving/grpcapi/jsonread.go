package grpcapi

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonReader reads strict JSON (what protojson's reader accepts) from b at
// i, for the Connect JSON codec. It allocates nothing but unescaped strings.
//
// It stays apart from the REST codec's scanner (serving/oip/oipjson,
// scan.go), which looks alike, because the two accept different inputs and
// each must keep its own: the Connect codec answers as protojson would
// (differential tests and fuzz targets hold it to protojson), the REST one
// as encoding/json would. A \u escape of half a surrogate pair is an error
// here (protojson) and U+FFFD there (encoding/json); a malformed message is
// one error here, as protojson reports it to a gRPC client, where REST's
// 400 body names the offset; numbers here are text for protojson's rules
// on each field's type, where REST parses them on the spot into a mantissa
// and exponent (its hot path: a tensor's "data"). One scanner with a
// switch for each difference would put those branches in the REST codec's
// per-character loops, which it is measured on, and would have to be
// exported from oipjson for this package, so the shared part (whitespace,
// the string and escape grammar, hex4, about 80 lines) is written twice.
type jsonReader struct {
	b []byte
	i int
}

var errJSON = errors.New("invalid JSON")

// maxJSONDepth bounds nesting, as protojson's recursion limit does.
const maxJSONDepth = 10000

func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// next skips whitespace and returns the byte at i, 0 at the end.
func (r *jsonReader) next() byte {
	for r.i < len(r.b) {
		switch c := r.b[r.i]; c {
		case ' ', '\t', '\r', '\n':
			r.i++
		default:
			return c
		}
	}
	return 0
}

func (r *jsonReader) consume(c byte) bool {
	if r.next() == c {
		r.i++
		return true
	}
	return false
}

func (r *jsonReader) literal(word string) bool {
	if len(r.b)-r.i >= len(word) && view(r.b[r.i:r.i+len(word)]) == word {
		r.i += len(word)
		return true
	}
	return false
}

// str consumes a string at i (which is '"') and returns its bytes between the
// quotes, still escaped, and whether it has escapes. It checks escapes,
// control characters and UTF-8.
func (r *jsonReader) str() (raw []byte, esc bool, err error) {
	start := r.i + 1
	for j := start; j < len(r.b); {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			return r.b[start:j], esc, nil
		case c == '\\':
			esc = true
			if j+1 >= len(r.b) {
				return nil, false, errJSON
			}
			switch r.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(r.b) {
					return nil, false, errJSON
				}
				rn := hex4(r.b[j+2 : j+6])
				j += 6
				switch {
				case rn < 0:
					return nil, false, errJSON
				case utf16.IsSurrogate(rn): // only as a pair
					if j+6 > len(r.b) || r.b[j] != '\\' || r.b[j+1] != 'u' || utf16.DecodeRune(rn, hex4(r.b[j+2:j+6])) == utf8.RuneError {
						return nil, false, errJSON
					}
					j += 6
				}
			default:
				return nil, false, errJSON
			}
		case c < 0x20:
			return nil, false, errJSON
		case c < utf8.RuneSelf:
			j++
		default:
			rn, n := utf8.DecodeRune(r.b[j:])
			if rn == utf8.RuneError && n == 1 {
				return nil, false, errJSON
			}
			j += n
		}
	}
	return nil, false, errJSON
}

// text consumes a string and returns its value: a view of b when it has no
// escapes (copy it to keep it), else a new slice.
func (r *jsonReader) text() ([]byte, error) {
	if r.next() != '"' {
		return nil, errJSON
	}
	raw, esc, err := r.str()
	if err != nil || !esc {
		return raw, err
	}
	return unescape(raw), nil
}

func hex4(b []byte) rune {
	var v rune
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
		v = v<<4 | rune(c)
	}
	return v
}

// unescape decodes a string body str has checked: surrogates come in pairs.
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
			rn := hex4(raw[i:])
			i += 4
			if utf16.IsSurrogate(rn) {
				rn = utf16.DecodeRune(rn, hex4(raw[i+2:]))
				i += 6
			}
			out = utf8.AppendRune(out, rn)
		default: // " \ /
			out = append(out, e)
		}
	}
	return out
}

// number consumes a JSON number at i and returns its text.
func (r *jsonReader) number() ([]byte, bool) {
	n := numberLen(r.b[r.i:])
	if n == 0 {
		return nil, false
	}
	tok := r.b[r.i : r.i+n]
	r.i += n
	return tok, true
}

// numberLen is the length of the JSON number at the start of b, 0 if none.
func numberLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i
}

// skip consumes one value of any kind, checking it; depth is how many
// objects and arrays are open around it.
func (r *jsonReader) skip(depth int) error {
	switch r.next() {
	case '"':
		_, _, err := r.str()
		return err
	case '{':
		return r.object(depth+1, func([]byte) error { return r.skip(depth + 1) })
	case '[':
		return r.array(depth+1, func() error { return r.skip(depth + 1) })
	case 't':
		if r.literal("true") {
			return nil
		}
	case 'f':
		if r.literal("false") {
			return nil
		}
	case 'n':
		if r.literal("null") {
			return nil
		}
	default:
		if _, ok := r.number(); ok {
			return nil
		}
	}
	return errJSON
}

// object reads the object at i (after whitespace), calling member with each
// key (unescaped; a view of b unless it had escapes) with i at its value,
// which member must consume. depth counts it: past maxJSONDepth is an error.
func (r *jsonReader) object(depth int, member func(key []byte) error) error {
	if depth > maxJSONDepth || !r.consume('{') {
		return errJSON
	}
	if r.consume('}') {
		return nil
	}
	for {
		key, err := r.text()
		if err != nil {
			return err
		}
		if !r.consume(':') {
			return errJSON
		}
		if r.next() == 0 {
			return errJSON
		}
		if err := member(key); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		if r.consume('}') {
			return nil
		}
		return errJSON
	}
}

// array reads the array at i, calling elem with i at each element.
func (r *jsonReader) array(depth int, elem func() error) error {
	if depth > maxJSONDepth || !r.consume('[') {
		return errJSON
	}
	if r.consume(']') {
		return nil
	}
	for {
		if r.next() == 0 {
			return errJSON
		}
		if err := elem(); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		if r.consume(']') {
			return nil
		}
		return errJSON
	}
}

// count is the number of elements of the array at i, which it checks and
// leaves unread.
func (r *jsonReader) count() (int, error) {
	start, n := r.i, 0
	err := r.array(1, func() error { n++; return r.skip(2) })
	r.i = start
	return n, err
}
