package rowio

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"

	"github.com/servekit/servekit/serving"
)

// typed holds a page's values of a fixed-width Parquet kind as the Go
// slice parquet-go decoded them into (S is float32 for FLOAT, int64 for
// INT64, …): a view of the page's buffer, or of a copy gathered from its
// dictionary. When the field holds S the values are copied as a block;
// the common widenings (INT32 to INT64, FLOAT to FP64, DOUBLE to FP32, …)
// are typed loops; anything else goes value by value through the
// builder's checked conversions.
type typed[S any] struct {
	field  Field
	get    func(*encoding.Values) []S
	put    func(*builder, S) error
	conv   func(*builder, []S) (int, error) // nil: put each value
	direct bool                             // the field's slice is []S
	vals   []S
	buf    []S // values gathered from a dictionary
}

func newTyped[S any](f Field, get func(*encoding.Values) []S, put func(*builder, S) error, same serving.DataType) *typed[S] {
	t := &typed[S]{field: f, get: get, put: put, direct: f.Type == same && same != serving.InvalidType}
	if !t.direct {
		t.conv = converter[S](f.Type)
	}
	return t
}

func (t *typed[S]) load(p parquet.Page) (int, error) {
	data := p.Data()
	d := p.Dictionary()
	if d == nil {
		t.vals = t.get(&data)
		return len(t.vals), nil
	}
	dd := d.Page().Data()
	dict := t.get(&dd)
	t.buf = t.buf[:0]
	for _, i := range data.Int32() {
		if uint32(i) >= uint32(len(dict)) {
			return 0, fmt.Errorf("dictionary index %d out of %d values", i, len(dict))
		}
		t.buf = append(t.buf, dict[i])
	}
	t.vals = t.buf
	return len(t.vals), nil
}

func (t *typed[S]) appendTo(b *builder, lo, hi int) (int, error) {
	src := t.vals[lo:hi]
	switch {
	case t.direct:
		d := b.data.(*[]S)
		*d = append(*d, src...)
		return len(src), nil
	case t.conv != nil:
		return t.conv(b, src)
	}
	for i, v := range src {
		if err := t.put(b, v); err != nil {
			return i, err
		}
	}
	return len(src), nil
}

// converter returns a typed loop from S to the Go type of dt when the
// conversion is a common one, else nil.
func converter[S any](dt serving.DataType) func(*builder, []S) (int, error) {
	var conv any
	var s S
	switch any(s).(type) {
	case float32:
		if dt == serving.FP64 {
			conv = widen[float32, float64]
		}
	case float64:
		if dt == serving.FP32 {
			conv = narrowFloat
		}
	case int32:
		switch dt {
		case serving.Int64:
			conv = widen[int32, int64]
		case serving.FP32:
			conv = widen[int32, float32]
		case serving.FP64:
			conv = widen[int32, float64]
		}
	case int64:
		switch dt {
		case serving.FP32:
			conv = widen[int64, float32]
		case serving.FP64:
			conv = widen[int64, float64]
		}
	}
	f, _ := conv.(func(*builder, []S) (int, error))
	return f
}

type number interface {
	~int32 | ~int64 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// widen converts where every value fits (integers to floats round, as
// strconv does for text).
func widen[S, D number](b *builder, src []S) (int, error) {
	d := b.data.(*[]D)
	out := slices.Grow(*d, len(src))
	for _, v := range src {
		out = append(out, D(v))
	}
	*d = out
	return len(src), nil
}

// narrowFloat converts DOUBLE to FP32: pandas writes float64 columns.
func narrowFloat(b *builder, src []float64) (int, error) {
	d := b.data.(*[]float32)
	out := slices.Grow(*d, len(src))
	for i, v := range src {
		f := float32(v)
		if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
			*d = out
			return i, fmt.Errorf("%v overflows FP32", v)
		}
		out = append(out, f)
	}
	*d = out
	return len(src), nil
}

func putFloat32(b *builder, v float32) error { return b.appendFloat(float64(v)) }
func putFloat64(b *builder, v float64) error { return b.appendFloat(v) }
func putInt32(b *builder, v int32) error     { return b.appendInt(int64(v)) }
func putInt64(b *builder, v int64) error     { return b.appendInt(v) }
func putUint32(b *builder, v uint32) error   { return b.appendInt(int64(v)) }

func putUint64(b *builder, v uint64) error {
	if v > math.MaxInt64 {
		return b.appendFloat(float64(v)) // a float column takes it, an integer one says it overflows
	}
	return b.appendInt(int64(v))
}

// putTime converts a timestamp of unit nanoseconds per tick to the
// microseconds a Timestamp field holds.
func putTime(unit int64) func(*builder, int64) error {
	return func(b *builder, v int64) error {
		if unit < 1000 {
			us := v / (1000 / unit)
			if v < 0 && v%(1000/unit) != 0 {
				us-- // floor: a time before the epoch stays before it
			}
			return b.appendInt(us)
		}
		m := unit / 1000
		if v > math.MaxInt64/m || v < math.MinInt64/m {
			return fmt.Errorf("timestamp %d overflows microseconds", v)
		}
		return b.appendInt(v * m)
	}
}

// logicalOf reads what the logical (or legacy converted) type of a leaf
// says about its integers: unsigned, or a timestamp of unit nanoseconds
// per tick (0 when not a timestamp).
func logicalOf(t parquet.Type) (unsigned bool, unit int64) {
	if lt := t.LogicalType(); lt != nil {
		switch v := lt.Value.(type) {
		case *format.IntType:
			return !v.IsSigned, 0
		case *format.TimestampType:
			switch v.Unit.Value.(type) {
			case *format.MilliSeconds:
				return false, 1e6
			case *format.NanoSeconds:
				return false, 1
			}
			return false, 1e3
		}
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
			return true, 0
		case deprecated.TimestampMillis:
			return false, 1e6
		case deprecated.TimestampMicros:
			return false, 1e3
		}
	}
	return false, 0
}

// byteValues holds a page of BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY values
// as views of the page's buffer. A text field gets them copied into one
// block per run, which its rows then share; another field parses them
// (a number written as text still reads).
type byteValues struct {
	field Field
	vals  [][]byte
	dict  [][]byte
}

func (t *byteValues) load(p parquet.Page) (int, error) {
	data := p.Data()
	d := p.Dictionary()
	if d == nil {
		var err error
		t.vals, err = byteViews(t.vals[:0], &data)
		return len(t.vals), err
	}
	dd := d.Page().Data()
	var err error
	if t.dict, err = byteViews(t.dict[:0], &dd); err != nil {
		return 0, err
	}
	t.vals = t.vals[:0]
	for _, i := range data.Int32() {
		if uint32(i) >= uint32(len(t.dict)) {
			return 0, fmt.Errorf("dictionary index %d out of %d values", i, len(t.dict))
		}
		t.vals = append(t.vals, t.dict[i])
	}
	return len(t.vals), nil
}

// byteViews appends to dst a view of each value of v.
func byteViews(dst [][]byte, v *encoding.Values) ([][]byte, error) {
	if v.Kind() == encoding.FixedLenByteArray {
		data, size := v.FixedLenByteArray()
		if size <= 0 {
			return dst, errors.New("fixed-length values of no length")
		}
		for i := 0; i+size <= len(data); i += size {
			dst = append(dst, data[i:i+size:i+size])
		}
		return dst, nil
	}
	data, offsets := v.ByteArray()
	for i := 1; i < len(offsets); i++ {
		lo, hi := offsets[i-1], offsets[i]
		if lo > hi || int(hi) > len(data) {
			return dst, fmt.Errorf("byte array offsets %d..%d out of %d bytes", lo, hi, len(data))
		}
		dst = append(dst, data[lo:hi:hi])
	}
	return dst, nil
}

func (t *byteValues) appendTo(b *builder, lo, hi int) (int, error) {
	src := t.vals[lo:hi]
	d, ok := b.data.(*[][]byte)
	if !ok {
		for i, v := range src {
			if err := b.appendBytes(v); err != nil {
				return i, err
			}
		}
		return len(src), nil
	}
	size := 0
	for _, v := range src {
		size += len(v)
	}
	block := make([]byte, 0, size)
	out := slices.Grow(*d, len(src))
	for _, v := range src {
		block = append(block, v...)
		out = append(out, block[len(block)-len(v):len(block):len(block)])
	}
	*d = out
	return len(src), nil
}

// boolValues reads a BOOLEAN page through parquet-go's values (bits do
// not slice as a Go slice does); booleans are rare in model inputs.
type boolValues struct {
	typed[bool]
	vbuf []parquet.Value
}

func (t *boolValues) load(p parquet.Page) (int, error) {
	t.vals = t.vals[:0]
	if cap(t.vbuf) == 0 {
		t.vbuf = make([]parquet.Value, 1024)
	}
	r := p.Values()
	for {
		n, err := r.ReadValues(t.vbuf)
		for _, v := range t.vbuf[:n] {
			if !v.IsNull() {
				t.vals = append(t.vals, v.Boolean())
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return len(t.vals), nil
		}
		if err != nil {
			return 0, err
		}
	}
}
