package scoring

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/servekit/servekit/serving"
)

// plan maps rows onto the model's inputs and answers back onto rows. Setup
// builds it once from the model's metadata.
type plan struct {
	md        serving.Metadata
	batchable bool      // rows are joined along dim 0
	inputs    []input   // in metadata order
	dynamic   bool      // some input has a dim inferred per row
	fixed     [][]int64 // every input's row shape, when none is dynamic
}

// input is one model input as rows carry it.
type input struct {
	serving.TensorSpec
	row   []int64 // the shape one row holds: Shape[1:] when batchable, else Shape
	fixed int64   // product of row's fixed dims
	dyn   int     // index in row of the one dim inferred from the length, or -1
}

func newPlan(md serving.Metadata) (*plan, error) {
	if len(md.Inputs) == 0 {
		return nil, fmt.Errorf("scoring: model %q declares no inputs", md.Name)
	}
	p := &plan{md: md, batchable: md.Batchable()}
	for _, s := range md.Inputs {
		in := input{TensorSpec: s, row: s.Shape, fixed: 1, dyn: -1}
		if p.batchable {
			in.row = s.Shape[1:]
		}
		for i, d := range in.row {
			if d >= 0 {
				in.fixed *= d
				continue
			}
			if in.dyn >= 0 {
				return nil, fmt.Errorf("scoring: model %q input %q %v: a row can leave one dim to be inferred from its length, not more", md.Name, s.Name, s.Shape)
			}
			in.dyn = i
			p.dynamic = true
		}
		if in.dyn >= 0 && in.fixed == 0 {
			return nil, fmt.Errorf("scoring: model %q input %q %v: a dynamic dim beside a zero dim cannot be inferred", md.Name, s.Name, s.Shape)
		}
		p.inputs = append(p.inputs, in)
		p.fixed = append(p.fixed, in.row)
	}
	return p, nil
}

// shape returns the row shape that n values fill.
func (in *input) shape(n int) ([]int64, error) {
	if in.dyn < 0 {
		if int64(n) != in.fixed {
			return nil, fmt.Errorf("input %q takes %d values per row (shape %v), got %d", in.Name, in.fixed, in.row, n)
		}
		return in.row, nil
	}
	if int64(n)%in.fixed != 0 {
		return nil, fmt.Errorf("input %q takes a multiple of %d values per row (shape %v), got %d", in.Name, in.fixed, in.row, n)
	}
	s := slices.Clone(in.row)
	s[in.dyn] = int64(n) / in.fixed
	return s, nil
}

// values is one input's values in a row.
type values struct {
	nums  []float64
	strs  []string
	found int // entries of the row that gave them: 0 when missing
}

// lookup finds each input's values in r, under its name or, for a model
// with one input, under "", and fills vals (one per input). It rejects a
// row with names the model does not take, which would otherwise be
// dropped without a word (a typo in a column name): counting what the
// lookups found tells, without walking the row's maps.
func (p *plan) lookup(r *Row, vals []values) error {
	found := 0
	for i := range p.inputs {
		v := &vals[i]
		name := p.inputs[i].Name
		var okN, okS bool
		v.nums, okN = r.Inputs[name]
		v.strs, okS = r.Strings[name]
		if !okN && !okS && len(p.inputs) == 1 {
			v.nums, okN = r.Inputs[""]
			v.strs, okS = r.Strings[""]
		}
		v.found = b2i(okN) + b2i(okS)
		found += v.found
	}
	if found != len(r.Inputs)+len(r.Strings) {
		return p.check(r)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// check says which names of r the model does not take, or that a single
// input is given under both its name and "".
func (p *plan) check(r *Row) error {
	for name := range r.Inputs {
		if err := p.known(name); err != nil {
			return err
		}
	}
	for name := range r.Strings {
		if err := p.known(name); err != nil {
			return err
		}
	}
	if len(p.inputs) == 1 && len(r.Inputs)+len(r.Strings) > 1 {
		return fmt.Errorf("input %q is given twice, under its name and under \"\"", p.inputs[0].Name)
	}
	return nil
}

func (p *plan) known(name string) error {
	if name == "" && len(p.inputs) == 1 {
		return nil
	}
	if _, ok := p.md.Input(name); !ok {
		return fmt.Errorf("model %q has no input %q (inputs: %s)", p.md.Name, name, strings.Join(inputNames(p.md), ", "))
	}
	return nil
}

func inputNames(md serving.Metadata) []string {
	n := make([]string, len(md.Inputs))
	for i, s := range md.Inputs {
		n[i] = s.Name
	}
	return n
}

// signature tells apart rows whose inferred dims differ: only rows with
// equal shapes can share a tensor. Models with fixed row shapes have one
// signature, "".
func signature(shapes [][]int64, p *plan) string {
	if !p.dynamic {
		return ""
	}
	var b strings.Builder
	for i, in := range p.inputs {
		if in.dyn >= 0 {
			b.WriteString(strconv.FormatInt(shapes[i][in.dyn], 10))
		}
		b.WriteByte(',')
	}
	return b.String()
}

// A column is one input's values for the rows of a batch, back to back:
// a pointer to a slice of the input's Go type (*[]float32, *[][]byte …),
// so that appending a row does not box a new slice header into an
// interface each time.

// appendValues converts one row's values to dt and appends them to col
// (a column, or nil for a new one), which it returns. A value dt cannot
// hold exactly — 2.5 for an integer, 300 for UINT8, 1e39 for FP32 — is an
// error naming the element, and leaves col as it was: rounding or
// saturating it would be a silently wrong answer.
func appendValues(col any, dt serving.DataType, nums []float64, strs []string) (any, error) {
	if dt == serving.Bytes {
		if nums != nil {
			return col, fmt.Errorf("is BYTES: give it as strings")
		}
		p, _ := col.(*[][]byte)
		if p == nil {
			p = new([][]byte)
		}
		for _, s := range strs {
			*p = append(*p, []byte(s))
		}
		return p, nil
	}
	if strs != nil {
		return col, fmt.Errorf("is %v: give it as numbers", dt)
	}
	switch dt {
	case serving.FP32:
		return appendConv(col, nums, dt, func(v float64) (float32, bool) {
			f := float32(v)
			return f, !math.IsInf(float64(f), 0) || math.IsInf(v, 0)
		})
	case serving.FP64:
		return appendConv(col, nums, dt, func(v float64) (float64, bool) { return v, true })
	case serving.FP16:
		return appendConv(col, nums, dt, half(serving.Float32ToFP16, 0x7c00))
	case serving.BF16:
		return appendConv(col, nums, dt, half(serving.Float32ToBF16, 0x7f80))
	case serving.Int8:
		return appendConv(col, nums, dt, integer[int8](math.MinInt8, 0x1p7))
	case serving.Int16:
		return appendConv(col, nums, dt, integer[int16](math.MinInt16, 0x1p15))
	case serving.Int32:
		return appendConv(col, nums, dt, integer[int32](math.MinInt32, 0x1p31))
	case serving.Int64:
		return appendConv(col, nums, dt, integer[int64](-0x1p63, 0x1p63))
	case serving.Uint8:
		return appendConv(col, nums, dt, integer[uint8](0, 0x1p8))
	case serving.Uint16:
		return appendConv(col, nums, dt, integer[uint16](0, 0x1p16))
	case serving.Uint32:
		return appendConv(col, nums, dt, integer[uint32](0, 0x1p32))
	case serving.Uint64:
		return appendConv(col, nums, dt, integer[uint64](0, 0x1p64))
	case serving.Bool:
		return appendConv(col, nums, dt, func(v float64) (bool, bool) { return v == 1, v == 0 || v == 1 })
	}
	return col, fmt.Errorf("has datatype %v, which rows cannot carry", dt)
}

func appendConv[T any](col any, nums []float64, dt serving.DataType, conv func(float64) (T, bool)) (any, error) {
	p, _ := col.(*[]T)
	if p == nil {
		p = new([]T)
	}
	d := *p
	start := len(d)
	for i, v := range nums {
		c, ok := conv(v)
		if !ok {
			*p = d[:start]
			return p, fmt.Errorf("element %d: %v does not fit %v", i, v, dt)
		}
		d = append(d, c)
	}
	*p = d
	return p, nil
}

func integer[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](lo, hiExcl float64) func(float64) (T, bool) {
	return func(v float64) (T, bool) {
		if v != math.Trunc(v) || v < lo || v >= hiExcl {
			return 0, false
		}
		return T(v), true
	}
}

func half(enc func(float32) uint16, inf uint16) func(float64) (uint16, bool) {
	return func(v float64) (uint16, bool) {
		h := enc(float32(v))
		return h, h&0x7fff != inf || math.IsInf(v, 0)
	}
}

// rowsOf returns rows [lo, hi) of a column of per elements a row, as the
// slice serving.FromSlice takes. It runs once per request, hence reflect.
func rowsOf(col any, per, lo, hi int) any {
	return reflect.ValueOf(col).Elem().Slice(lo*per, hi*per).Interface()
}

// truncate cuts a column back to n elements.
func truncate(col any, n int) {
	reflect.ValueOf(col).Elem().SetLen(n)
}

// floats returns a numeric tensor's elements as float64, decoding FP16 and
// BF16, in a new slice: results outlive the Response, whose data a cache
// may share.
func floats(t serving.Tensor) ([]float64, bool) {
	switch d := t.Data().(type) {
	case []float32:
		return widen(d), true
	case []float64:
		return slices.Clone(d), true
	case []int8:
		return widen(d), true
	case []int16:
		return widen(d), true
	case []int32:
		return widen(d), true
	case []int64:
		return widen(d), true
	case []uint8:
		return widen(d), true
	case []uint32:
		return widen(d), true
	case []uint64:
		return widen(d), true
	case []uint16:
		if t.DataType == serving.Uint16 {
			return widen(d), true
		}
		f := make([]float64, len(d))
		for i := range d {
			f[i], _ = t.Float64At(i)
		}
		return f, true
	case []bool:
		f := make([]float64, len(d))
		for i, b := range d {
			if b {
				f[i] = 1
			}
		}
		return f, true
	}
	return nil, false
}

func widen[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32](d []T) []float64 {
	f := make([]float64, len(d))
	for i, v := range d {
		f[i] = float64(v)
	}
	return f
}
