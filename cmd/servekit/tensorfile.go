package main

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The files servekit infer turns into tensors. Both are decoded from
// bytes already read under --max-bytes, and every count is checked
// against those bytes before anything is allocated from it: a header
// claiming a billion elements in a 100-byte file is refused, not
// believed.

// npyTypes maps NumPy's type codes (without the byte-order character)
// to V2 datatypes and element sizes. float16 is left out: JSON carries
// numbers, and a half float a person converts with .astype(np.float32)
// is clearer than one this command rounds.
var npyTypes = map[string]struct {
	datatype string
	size     int
}{
	"b1": {"BOOL", 1}, "i1": {"INT8", 1}, "u1": {"UINT8", 1},
	"i2": {"INT16", 2}, "u2": {"UINT16", 2},
	"i4": {"INT32", 4}, "u4": {"UINT32", 4},
	"i8": {"INT64", 8}, "u8": {"UINT64", 8},
	"f4": {"FP32", 4}, "f8": {"FP64", 8},
}

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([<>|=])([a-z]\d+)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// maxDims bounds a tensor's rank, as the server does.
const maxDims = 32

// decodeNPY reads a NumPy .npy file (format versions 1 to 3, as
// numpy.save writes them): a C-ordered array of a numeric or bool dtype,
// either byte order.
func decodeNPY(b []byte) (inferInput, error) {
	const magic = "\x93NUMPY"
	if len(b) < 10 || string(b[:6]) != magic {
		return inferInput{}, errors.New("not a .npy file (no \\x93NUMPY magic)")
	}
	var hlen, off int
	switch major := b[6]; major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return inferInput{}, errors.New(".npy header truncated")
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return inferInput{}, fmt.Errorf(".npy format version %d: want 1, 2 or 3", major)
	}
	if hlen < 0 || hlen > len(b)-off {
		return inferInput{}, fmt.Errorf(".npy header of %d bytes in a file of %d", hlen, len(b))
	}
	header, data := string(b[off:off+hlen]), b[off+hlen:]

	m := npyDescr.FindStringSubmatch(header)
	if m == nil {
		return inferInput{}, fmt.Errorf(".npy header %q: no simple dtype (structured and object arrays are not tensors)", strings.TrimSpace(header))
	}
	typ, ok := npyTypes[m[2]]
	if !ok {
		return inferInput{}, fmt.Errorf(".npy dtype %q: want bool, int8-64, uint8-64, float32 or float64", m[1]+m[2])
	}
	var order binary.ByteOrder = binary.LittleEndian
	if m[1] == ">" {
		order = binary.BigEndian
	}
	if f := npyFortran.FindStringSubmatch(header); f == nil || f[1] != "False" {
		return inferInput{}, errors.New(".npy array in Fortran order: save np.ascontiguousarray(a)")
	}
	s := npyShape.FindStringSubmatch(header)
	if s == nil {
		return inferInput{}, fmt.Errorf(".npy header %q: no shape", strings.TrimSpace(header))
	}
	shape := []int{}
	count := 1
	for d := range strings.SplitSeq(s[1], ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return inferInput{}, fmt.Errorf(".npy shape (%s): not a shape", s[1])
		}
		if len(shape) == maxDims {
			return inferInput{}, fmt.Errorf(".npy shape (%s): more than %d dimensions", s[1], maxDims)
		}
		shape = append(shape, n)
		// Checked against the bytes before any allocation: the product
		// can never pass the data's length, so it cannot overflow.
		if n > 0 && count > len(data)/n {
			return inferInput{}, fmt.Errorf(".npy shape (%s) needs more elements than the file's %d bytes of data hold", s[1], len(data))
		}
		count *= n
	}
	if count*typ.size != len(data) {
		return inferInput{}, fmt.Errorf(".npy shape (%s) of %s is %d bytes of data; the file has %d", s[1], typ.datatype, count*typ.size, len(data))
	}
	return inferInput{Shape: shape, Datatype: typ.datatype, Data: npyValues(typ.datatype, data, count, order)}, nil
}

// npyValues decodes count elements of data, which holds exactly that
// many, into the slice encoding/json writes as the V2 data array.
func npyValues(datatype string, data []byte, count int, order binary.ByteOrder) any {
	switch datatype {
	case "BOOL":
		v := make([]bool, count)
		for i := range v {
			v[i] = data[i] != 0
		}
		return v
	case "INT8":
		v := make([]int8, count)
		for i := range v {
			v[i] = int8(data[i])
		}
		return v
	case "UINT8":
		v := make([]uint16, count) // not []uint8: encoding/json writes that as base64
		for i := range v {
			v[i] = uint16(data[i])
		}
		return v
	case "INT16":
		return each(data, 2, count, func(b []byte) int16 { return int16(order.Uint16(b)) })
	case "UINT16":
		return each(data, 2, count, order.Uint16)
	case "INT32":
		return each(data, 4, count, func(b []byte) int32 { return int32(order.Uint32(b)) })
	case "UINT32":
		return each(data, 4, count, order.Uint32)
	case "INT64":
		return each(data, 8, count, func(b []byte) int64 { return int64(order.Uint64(b)) })
	case "UINT64":
		return each(data, 8, count, order.Uint64)
	case "FP32":
		return each(data, 4, count, func(b []byte) float32 { return math.Float32frombits(order.Uint32(b)) })
	default: // FP64
		return each(data, 8, count, func(b []byte) float64 { return math.Float64frombits(order.Uint64(b)) })
	}
}

func each[T any](data []byte, size, count int, get func([]byte) T) []T {
	v := make([]T, count)
	for i := range v {
		v[i] = get(data[i*size : (i+1)*size])
	}
	return v
}

// decodeCSV reads rows of numbers as a [rows, columns] tensor of
// datatype. A first row that is not all numbers is a header and is
// skipped; every other row must have the first row's number of columns.
func decodeCSV(b []byte, datatype string) (inferInput, error) {
	var parse func(string) (any, error)
	switch datatype {
	case "FP32":
		parse = func(s string) (any, error) { f, err := strconv.ParseFloat(s, 32); return float32(f), err }
	case "FP64":
		parse = func(s string) (any, error) { return strconv.ParseFloat(s, 64) }
	case "INT32":
		parse = func(s string) (any, error) { n, err := strconv.ParseInt(s, 10, 32); return int32(n), err }
	case "INT64":
		parse = func(s string) (any, error) { return strconv.ParseInt(s, 10, 64) }
	default:
		return inferInput{}, fmt.Errorf("--datatype %q: want FP32, FP64, INT32 or INT64 for CSV", datatype)
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	r.Comment = '#'
	var data []any
	var header error
	rows, cols := 0, 0
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return inferInput{}, err // csv's errors name the line
		}
		row := make([]any, 0, len(rec))
		var bad error
		for i, field := range rec {
			v, err := parse(strings.TrimSpace(field))
			if err != nil {
				at, _ := r.FieldPos(i)
				bad = fmt.Errorf("line %d, column %d: %q is not %s", at, i+1, field, datatype)
				break
			}
			row = append(row, v)
		}
		if bad != nil {
			if first {
				header = bad
				continue // a header
			}
			return inferInput{}, bad
		}
		data = append(data, row...)
		rows, cols = rows+1, len(rec)
	}
	if rows == 0 && header != nil {
		return inferInput{}, fmt.Errorf("no rows of numbers (the first line, taken as a header: %w)", header)
	}
	if rows == 0 {
		return inferInput{}, errors.New("no rows of numbers")
	}
	return inferInput{Shape: []int{rows, cols}, Datatype: datatype, Data: data}, nil
}
