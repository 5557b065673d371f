package serving_test

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
)

func TestNewTensorChecksShape(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		n     int
		ok    bool
	}{
		{"matrix", []int64{2, 3}, 6, true},
		{"scalar", nil, 1, true},
		{"zero rows", []int64{0, 8}, 0, true},
		{"too few", []int64{2, 3}, 5, false},
		{"negative", []int64{-1, 3}, 3, false},
		{"absurd", []int64{1 << 40, 1 << 40}, 1, false},
		{"overflow", []int64{math.MaxInt64, 2}, 1, false},
		{"over limit", []int64{serving.MaxElements + 1}, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := serving.NewTensor("x", c.shape, make([]float32, c.n))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && serving.CodeOf(err) != serving.InvalidArgument {
				t.Errorf("code %v, want invalid_argument", serving.CodeOf(err))
			}
		})
	}
}

func TestMakeRejectsAbsurdShapeBeforeAllocating(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, dt := range serving.DataTypes {
		if _, err := serving.Make("x", dt, []int64{1 << 40, 1 << 40}); err == nil {
			t.Fatalf("Make accepted a 2^80-element %v shape", dt)
		}
		if _, err := serving.FromRaw("x", dt, []int64{1 << 20, 1 << 20}, nil); err == nil {
			t.Fatalf("FromRaw accepted a 2^40-element %v shape", dt)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("rejecting absurd shapes allocated %d bytes", grew)
	}
}

func TestValuesNeverPanicsOnMismatch(t *testing.T) {
	x, err := serving.NewTensor("x", []int64{2}, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Values[float32](x); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Values[float32] of INT64: %v", err)
	}
	if _, err := serving.Values[int64](serving.Tensor{}); err == nil {
		t.Error("Values of the zero Tensor succeeded")
	}
	if _, err := x.Strings(); err == nil {
		t.Error("Strings of INT64 succeeded")
	}
	v, err := serving.Values[int64](x)
	if err != nil || len(v) != 2 || v[1] != 2 {
		t.Errorf("Values[int64] = %v, %v", v, err)
	}
}

func TestValidateRejectsWrongGoType(t *testing.T) {
	x, _ := serving.NewTensor("x", []int64{2}, []float32{1, 2})
	x.DataType = serving.FP64
	if err := x.Validate(); err == nil {
		t.Error("FP64 tensor over []float32 passed Validate")
	}
}

// every builds a 2x2 tensor of each datatype with distinct values.
func every(t *testing.T) []serving.Tensor {
	t.Helper()
	s := []int64{2, 2}
	must := func(x serving.Tensor, err error) serving.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	return []serving.Tensor{
		must(serving.NewTensor("bool", s, []bool{true, false, true, true})),
		must(serving.NewTensor("u8", s, []uint8{0, 1, 254, 255})),
		must(serving.NewTensor("u16", s, []uint16{0, 1, 65534, 65535})),
		must(serving.NewTensor("u32", s, []uint32{0, 1, 1 << 31, math.MaxUint32})),
		must(serving.NewTensor("u64", s, []uint64{0, 1, 1 << 63, math.MaxUint64})),
		must(serving.NewTensor("i8", s, []int8{-128, -1, 0, 127})),
		must(serving.NewTensor("i16", s, []int16{-32768, -1, 0, 32767})),
		must(serving.NewTensor("i32", s, []int32{math.MinInt32, -1, 0, math.MaxInt32})),
		must(serving.NewTensor("i64", s, []int64{math.MinInt64, -1, 0, math.MaxInt64})),
		must(serving.NewFP16("f16", s, []uint16{0x3c00, 0xc000, 0x7c00, 0x7e00})),
		must(serving.NewBF16("bf16", s, []uint16{0x3f80, 0xc000, 0x7f80, 0x7fc0})),
		must(serving.NewTensor("f32", s, []float32{1.5, float32(math.NaN()), float32(math.Inf(-1)), -0})),
		must(serving.NewTensor("f64", s, []float64{1.5, math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64})),
		must(serving.NewStrings("bytes", s, []string{"", "a", "héllo", "\x00\xff"})),
	}
}

func TestRawRoundTripEveryType(t *testing.T) {
	for _, x := range every(t) {
		t.Run(x.DataType.String(), func(t *testing.T) {
			raw := x.AppendRaw(nil)
			if len(raw) != x.RawSize() {
				t.Errorf("RawSize %d, encoding %d bytes", x.RawSize(), len(raw))
			}
			back, err := serving.FromRaw(x.Name, x.DataType, x.Shape, raw)
			if err != nil {
				t.Fatal(err)
			}
			if string(back.RawBytes()) != string(raw) {
				t.Errorf("round trip changed the bytes")
			}
			if back.Len() != x.Len() {
				t.Errorf("Len %d, want %d", back.Len(), x.Len())
			}
		})
	}
}

func TestFromRawRejectsBadLengths(t *testing.T) {
	if _, err := serving.FromRaw("x", serving.FP32, []int64{2}, make([]byte, 7)); err == nil {
		t.Error("7 bytes accepted for 2 FP32")
	}
	bad := []byte{5, 0, 0, 0, 'a'} // claims 5 bytes, has 1
	if _, err := serving.FromRaw("s", serving.Bytes, []int64{1}, bad); err == nil {
		t.Error("truncated BYTES accepted")
	}
	extra := []byte{1, 0, 0, 0, 'a', 'b'}
	if _, err := serving.FromRaw("s", serving.Bytes, []int64{1}, extra); err == nil {
		t.Error("trailing bytes accepted")
	}
	if _, err := serving.FromRaw("s", serving.Bytes, []int64{1 << 40, 1 << 40}, nil); err == nil {
		t.Error("absurd BYTES shape accepted")
	}
	b, err := serving.FromRaw("b", serving.Bool, []int64{2}, []byte{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := serving.Values[bool](b); !v[1] || v[0] {
		t.Errorf("bools from raw = %v, want [false true]", v)
	}
}

func TestCloneIsDeep(t *testing.T) {
	x, _ := serving.NewStrings("s", []int64{1}, []string{"abc"})
	c := x.Clone()
	v, _ := serving.Values[[]byte](c)
	v[0][0] = 'z'
	if s, _ := x.Strings(); s[0] != "abc" {
		t.Errorf("Clone shares bytes: original became %q", s[0])
	}
}

func TestRowsAndConcat(t *testing.T) {
	a, _ := serving.NewTensor("x", []int64{2, 2}, []float32{1, 2, 3, 4})
	b, _ := serving.NewTensor("x", []int64{1, 2}, []float32{5, 6})
	j, err := serving.ConcatRows([]serving.Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := serving.Values[float32](j); len(v) != 6 || v[4] != 5 || j.Shape[0] != 3 {
		t.Fatalf("ConcatRows = %v %v", j.Shape, v)
	}
	r, err := j.Rows(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := serving.Values[float32](r); len(v) != 4 || v[0] != 3 || v[3] != 6 || r.Shape[0] != 2 {
		t.Errorf("Rows(1,3) = %v %v", r.Shape, v)
	}
	if _, err := j.Rows(2, 4); err == nil {
		t.Error("Rows past the end accepted")
	}
	c, _ := serving.NewTensor("x", []int64{1, 3}, []float32{1, 2, 3})
	if _, err := serving.ConcatRows([]serving.Tensor{a, c}); err == nil {
		t.Error("ConcatRows joined different row widths")
	}
	d, _ := serving.NewTensor("x", []int64{1, 2}, []float64{1, 2})
	if _, err := serving.ConcatRows([]serving.Tensor{a, d}); err == nil {
		t.Error("ConcatRows joined different datatypes")
	}
}

func TestFP16Conversions(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {float32(math.Inf(1)), 0x7c00},
		{6.1035156e-05, 0x0400}, {5.9604645e-08, 0x0001}, {1e6, 0x7c00}, {0.1, 0x2e66},
	}
	for _, c := range cases {
		if got := serving.Float32ToFP16(c.f); got != c.h {
			t.Errorf("Float32ToFP16(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
		if c.f < 1e5 {
			if got := serving.FP16ToFloat32(c.h); math.Abs(float64(got-c.f)) > 1e-3*math.Abs(float64(c.f)) {
				t.Errorf("FP16ToFloat32(%#04x) = %v, want %v", c.h, got, c.f)
			}
		}
	}
	for h := range uint32(1 << 16) {
		f := serving.FP16ToFloat32(uint16(h))
		if f != f {
			if g := serving.FP16ToFloat32(serving.Float32ToFP16(f)); g == g {
				t.Fatalf("NaN %#04x lost its NaN-ness", h)
			}
			continue
		}
		if back := serving.Float32ToFP16(f); back != uint16(h) {
			t.Fatalf("FP16 %#04x -> %v -> %#04x", h, f, back)
		}
	}
	if got := serving.BF16ToFloat32(serving.Float32ToBF16(1.5)); got != 1.5 {
		t.Errorf("BF16 round trip of 1.5 = %v", got)
	}
	if got := serving.BF16ToFloat32(serving.Float32ToBF16(float32(math.NaN()))); got == got {
		t.Error("BF16 lost a NaN")
	}
}

func TestParseDataType(t *testing.T) {
	for _, d := range serving.DataTypes {
		got, err := serving.ParseDataType(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDataType(%q) = %v, %v", d.String(), got, err)
		}
	}
	for _, name := range []string{"fp32", "Fp16", "bytes"} { // the protocol's names are case-insensitive
		if d, err := serving.ParseDataType(name); err != nil || !strings.EqualFold(d.String(), name) {
			t.Errorf("ParseDataType(%q) = %v, %v", name, d, err)
		}
	}
	for _, name := range []string{"FLOAT32", "INVALID", "invalid", ""} {
		if d, err := serving.ParseDataType(name); err == nil || serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("ParseDataType(%q) = %v, %v; want an InvalidArgument error", name, d, err)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	cause := errors.New("disk on fire")
	err := serving.Errorf(serving.Unavailable, "model %q: %w", "m", cause)
	if !errors.Is(err, cause) || serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("Errorf lost its cause or code: %v", err)
	}
	wrapped := errors.Join(errors.New("other"), err)
	if serving.CodeOf(wrapped) != serving.Unavailable {
		t.Errorf("CodeOf through Join = %v", serving.CodeOf(wrapped))
	}
	if serving.CodeOf(errors.New("x")) != serving.Internal || serving.CodeOf(nil) != serving.OK {
		t.Error("CodeOf defaults wrong")
	}
	over := serving.Errorf(serving.ResourceExhausted, "batch: queue full: %w", serving.ErrOverloaded)
	over.RetryAfter = 3e9
	if !errors.Is(over, serving.ErrOverloaded) || serving.RetryAfterOf(errors.Join(over)) != 3e9 {
		t.Errorf("overload error: Is=%v RetryAfter=%v", errors.Is(over, serving.ErrOverloaded), serving.RetryAfterOf(over))
	}
}

func TestFromSlice(t *testing.T) {
	bits := []uint16{0x3c00, 0x4000}
	for _, dt := range []serving.DataType{serving.FP16, serving.BF16, serving.Uint16} {
		x, err := serving.FromSlice("h", dt, []int64{2}, bits)
		if err != nil || x.DataType != dt {
			t.Errorf("FromSlice(%v) = %v, %v", dt, x.DataType, err)
		}
	}
	if _, err := serving.FromSlice("x", serving.FP32, []int64{2}, []float64{1, 2}); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("FP32 over []float64: %v", err)
	}
	if _, err := serving.FromSlice("x", serving.FP32, []int64{3}, []float32{1, 2}); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, err := serving.FromSlice("x", serving.FP32, []int64{1}, "nope"); err == nil {
		t.Error("a string accepted as tensor data")
	}
}
