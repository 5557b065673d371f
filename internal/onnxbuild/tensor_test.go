package onnxbuild_test

import (
	"math"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// samples holds six values of every element type, with the extremes that
// break sloppy sign handling or truncation.
var samples = map[onnxbuild.ElemType]any{
	onnxbuild.Float:    []float32{0, -1.5, 3.25, math.MaxFloat32, float32(math.Inf(-1)), math.SmallestNonzeroFloat32},
	onnxbuild.Double:   []float64{0, -1.5, 3.25, math.MaxFloat64, math.Inf(1), math.SmallestNonzeroFloat64},
	onnxbuild.Int8:     []int8{0, -1, 1, math.MinInt8, math.MaxInt8, 42},
	onnxbuild.Int16:    []int16{0, -1, 1, math.MinInt16, math.MaxInt16, 42},
	onnxbuild.Int32:    []int32{0, -1, 1, math.MinInt32, math.MaxInt32, 42},
	onnxbuild.Int64:    []int64{0, -1, 1, math.MinInt64, math.MaxInt64, 42},
	onnxbuild.Uint8:    []uint8{0, 1, 2, 127, 128, math.MaxUint8},
	onnxbuild.Uint16:   []uint16{0, 1, 2, 0x7fff, 0x8000, math.MaxUint16},
	onnxbuild.Uint32:   []uint32{0, 1, 2, 1 << 31, 42, math.MaxUint32},
	onnxbuild.Uint64:   []uint64{0, 1, 2, 1 << 63, 42, math.MaxUint64},
	onnxbuild.Bool:     []bool{true, false, false, true, true, false},
	onnxbuild.Float16:  []uint16{0x0000, 0x3c00, 0xbc00, 0x7bff, 0x7c00, 0x0001}, // 0, 1, -1, max, +inf, tiny
	onnxbuild.BFloat16: []uint16{0x0000, 0x3f80, 0xbf80, 0x7f7f, 0x7f80, 0x0001},
	onnxbuild.String:   [][]byte{[]byte("a"), {}, []byte("ünïcødé"), {0, 1, 2}, []byte("fraud"), []byte("x y")},
}

func TestTensorRoundTrip(t *testing.T) {
	for _, elem := range onnxbuild.ElemTypes {
		data, ok := samples[elem]
		if !ok {
			t.Fatalf("no sample for %v", elem)
		}
		empty := reflect.MakeSlice(reflect.TypeOf(data), 0, 0).Interface()
		scalar := reflect.ValueOf(data).Slice(0, 1).Interface()
		for _, in := range []onnxbuild.TensorData{
			{Name: "t", Elem: elem, Dims: []int64{2, 3}, Data: data},
			{Name: "scalar", Elem: elem, Data: scalar},
			{Elem: elem, Dims: []int64{0, 3}, Data: empty},
		} {
			t.Run(elem.String()+"/"+in.Name, func(t *testing.T) {
				b, err := onnxbuild.EncodeTensor(&in)
				if err != nil {
					t.Fatal(err)
				}
				out, err := onnxbuild.DecodeTensor(b)
				if err != nil {
					t.Fatal(err)
				}
				if out.Name != in.Name || out.Elem != in.Elem || !slices.Equal(out.Dims, in.Dims) {
					t.Errorf("got %q %v %v, want %q %v %v", out.Name, out.Elem, out.Dims, in.Name, in.Elem, in.Dims)
				}
				if !reflect.DeepEqual(out.Data, in.Data) {
					t.Errorf("data = %#v, want %#v", out.Data, in.Data)
				}
			})
		}
	}
}

func TestEncodeTensorForms(t *testing.T) {
	// Raw little-endian bytes and []string are accepted alongside the
	// natural types and must encode identically.
	same := func(a, b onnxbuild.TensorData) {
		t.Helper()
		ea, err := onnxbuild.EncodeTensor(&a)
		if err != nil {
			t.Fatal(err)
		}
		eb, err := onnxbuild.EncodeTensor(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ea, eb) {
			t.Errorf("%v: encodings differ", a.Elem)
		}
	}
	same(onnxbuild.TensorData{Elem: onnxbuild.Float, Dims: []int64{2}, Data: []float32{1, -2}},
		onnxbuild.TensorData{Elem: onnxbuild.Float, Dims: []int64{2}, Data: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}})
	same(onnxbuild.TensorData{Elem: onnxbuild.String, Dims: []int64{2}, Data: []string{"a", "bc"}},
		onnxbuild.TensorData{Elem: onnxbuild.String, Dims: []int64{2}, Data: [][]byte{[]byte("a"), []byte("bc")}})
}

func TestEncodeTensorErrors(t *testing.T) {
	for name, td := range map[string]*onnxbuild.TensorData{
		"nil":            nil,
		"unknown elem":   {Elem: 14, Dims: []int64{1}, Data: []float32{1}},
		"wrong Go type":  {Elem: onnxbuild.Float, Dims: []int64{1}, Data: []float64{1}},
		"too few values": {Elem: onnxbuild.Int64, Dims: []int64{2, 2}, Data: []int64{1, 2, 3}},
		"raw too short":  {Elem: onnxbuild.Int32, Dims: []int64{1}, Data: []byte{1, 2}},
		"negative dim":   {Elem: onnxbuild.Int32, Dims: []int64{-1}, Data: []int32{}},
		"string type":    {Elem: onnxbuild.String, Dims: []int64{1}, Data: []int32{1}},
		"string count":   {Elem: onnxbuild.String, Dims: []int64{2}, Data: []string{"a"}},
	} {
		if _, err := onnxbuild.EncodeTensor(td); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// tensorProto hand-writes a TensorProto the way other writers do: typed
// repeated fields, packed or one field per value.
func tensorProto(elem onnxbuild.ElemType, dims []int64, field protowire.Number, typ protowire.Type, packed bool, vals []uint64) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(elem))
	appendVal := func(b []byte, v uint64) []byte {
		switch typ {
		case protowire.Fixed32Type:
			return protowire.AppendFixed32(b, uint32(v))
		case protowire.Fixed64Type:
			return protowire.AppendFixed64(b, v)
		}
		return protowire.AppendVarint(b, v)
	}
	if packed {
		var body []byte
		for _, v := range vals {
			body = appendVal(body, v)
		}
		b = protowire.AppendTag(b, field, protowire.BytesType)
		return protowire.AppendBytes(b, body)
	}
	for _, v := range vals {
		b = protowire.AppendTag(b, field, typ)
		b = appendVal(b, v)
	}
	return b
}

func TestDecodeTensorTypedFields(t *testing.T) {
	neg := func(v int64) uint64 { return uint64(v) } // sign-extended, as int32_data is written
	f32 := func(v float32) uint64 { return uint64(math.Float32bits(v)) }
	cases := []struct {
		elem  onnxbuild.ElemType
		field protowire.Number
		typ   protowire.Type
		vals  []uint64
		want  any
	}{
		{onnxbuild.Float, 4, protowire.Fixed32Type, []uint64{f32(1.5), f32(-2)}, []float32{1.5, -2}},
		{onnxbuild.Double, 10, protowire.Fixed64Type, []uint64{math.Float64bits(-0.25), math.Float64bits(8)}, []float64{-0.25, 8}},
		{onnxbuild.Int32, 5, protowire.VarintType, []uint64{neg(-7), 7}, []int32{-7, 7}},
		{onnxbuild.Int16, 5, protowire.VarintType, []uint64{neg(-300), 300}, []int16{-300, 300}},
		{onnxbuild.Int8, 5, protowire.VarintType, []uint64{neg(-128), 127}, []int8{-128, 127}},
		{onnxbuild.Uint8, 5, protowire.VarintType, []uint64{0, 255}, []uint8{0, 255}},
		{onnxbuild.Uint16, 5, protowire.VarintType, []uint64{1, 65535}, []uint16{1, 65535}},
		{onnxbuild.Bool, 5, protowire.VarintType, []uint64{1, 0}, []bool{true, false}},
		{onnxbuild.Float16, 5, protowire.VarintType, []uint64{0x3c00, 0xbc00}, []uint16{0x3c00, 0xbc00}},
		{onnxbuild.BFloat16, 5, protowire.VarintType, []uint64{0x3f80, 0xbf80}, []uint16{0x3f80, 0xbf80}},
		{onnxbuild.Int64, 7, protowire.VarintType, []uint64{neg(math.MinInt64), 3}, []int64{math.MinInt64, 3}},
		{onnxbuild.Uint32, 11, protowire.VarintType, []uint64{math.MaxUint32, 3}, []uint32{math.MaxUint32, 3}},
		{onnxbuild.Uint64, 11, protowire.VarintType, []uint64{math.MaxUint64, 3}, []uint64{math.MaxUint64, 3}},
	}
	for _, c := range cases {
		for _, packed := range []bool{true, false} {
			got, err := onnxbuild.DecodeTensor(tensorProto(c.elem, []int64{2}, c.field, c.typ, packed, c.vals))
			if err != nil {
				t.Errorf("%v packed=%v: %v", c.elem, packed, err)
				continue
			}
			if !reflect.DeepEqual(got.Data, c.want) {
				t.Errorf("%v packed=%v: data = %#v, want %#v", c.elem, packed, got.Data, c.want)
			}
		}
	}
}

func TestDecodeTensorStringData(t *testing.T) {
	b := tensorProto(onnxbuild.String, []int64{2}, 0, 0, false, nil)
	for _, s := range []string{"hello", ""} {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	got, err := onnxbuild.DecodeTensor(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{[]byte("hello"), {}}; !reflect.DeepEqual(got.Data, want) {
		t.Errorf("data = %q, want %q", got.Data, want)
	}
}

func TestDecodeTensorErrors(t *testing.T) {
	valid, err := onnxbuild.EncodeTensor(&onnxbuild.TensorData{Elem: onnxbuild.Int64, Dims: []int64{2}, Data: []int64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	external := slices.Clone(valid)
	external = protowire.AppendTag(external, 14, protowire.VarintType)
	external = protowire.AppendVarint(external, 1)
	for name, b := range map[string][]byte{
		"truncated":       valid[:len(valid)-1],
		"no type":         tensorProto(0, []int64{1}, 7, protowire.VarintType, false, []uint64{1}),
		"complex64":       tensorProto(14, []int64{1}, 4, protowire.Fixed32Type, false, []uint64{1, 2}),
		"too few values":  tensorProto(onnxbuild.Int64, []int64{3}, 7, protowire.VarintType, true, []uint64{1, 2}),
		"wrong field":     tensorProto(onnxbuild.Float, []int64{1}, 7, protowire.VarintType, false, []uint64{1}),
		"wrong wire type": tensorProto(onnxbuild.Float, []int64{1}, 4, protowire.VarintType, false, []uint64{1}),
		"raw size":        append(tensorProto(onnxbuild.Int32, []int64{2}, 0, 0, false, nil), 0x4a, 3, 1, 2, 3),
		"external data":   external,
		"huge shape":      tensorProto(onnxbuild.Uint8, []int64{1 << 40, 1 << 40}, 0, 0, false, nil),
	} {
		if _, err := onnxbuild.DecodeTensor(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestElemType(t *testing.T) {
	if got := onnxbuild.BFloat16.String(); got != "BFLOAT16" {
		t.Errorf("BFloat16.String() = %q", got)
	}
	if onnxbuild.ElemType(14).Valid() || onnxbuild.ElemType(14).String() != "ElemType(14)" {
		t.Error("complex64 should be unknown")
	}
	for _, e := range onnxbuild.ElemTypes {
		if !e.Valid() || (e.Size() == 0) != (e == onnxbuild.String) {
			t.Errorf("%v: Valid %v, Size %d", e, e.Valid(), e.Size())
		}
	}
}
