package serving_test

import (
	"encoding/binary"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
)

// FuzzFromRaw decodes arbitrary raw bytes against arbitrary shapes of every
// datatype: FromRaw must never panic, never allocate more than
// serving.DecodeBudget of the bytes it is given, and what it accepts must be
// a valid tensor that encodes back to the same bytes (BOOL normalised).
func FuzzFromRaw(f *testing.F) {
	for _, dt := range serving.DataTypes {
		f.Add(uint8(dt), int64(2), int64(3), make([]byte, 6*dt.Size()))
		f.Add(uint8(dt), int64(4194304), int64(1), []byte{}) // issue 18 row 2
	}
	f.Add(uint8(serving.Bytes), int64(2), int64(1), binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0), 1<<30))
	f.Add(uint8(serving.Bytes), int64(2), int64(1), []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, dt uint8, d0, d1 int64, raw []byte) {
		shape := []int64{d0, d1}
		var tn serving.Tensor
		var err error
		got := alloctest.Once(func() { tn, err = serving.FromRaw("x", serving.DataType(dt), shape, raw) })
		if budget := serving.DecodeBudget(int64(len(raw))); !alloctest.Race && int64(got) > budget {
			t.Fatalf("%v%v from %d bytes: allocated %d, over the budget of %d", serving.DataType(dt), shape, len(raw), got, budget)
		}
		if err != nil {
			return
		}
		if err := tn.Validate(); err != nil {
			t.Fatalf("accepted an invalid tensor: %v", err)
		}
		if back := tn.RawBytes(); len(back) != len(raw) || serving.DataType(dt) != serving.Bool && string(back) != string(raw) {
			t.Fatalf("%v%v: %x encodes back as %x", serving.DataType(dt), shape, raw, back)
		}
	})
}

// TestFromRawBudgetForALie: a BYTES shape of 4M elements with no
// bytes (issue 18 row 2: 96 MiB before) is refused before any allocation.
func TestFromRawBudgetForALie(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed")
	}
	got := alloctest.Bytes(3, func() { _, _ = serving.FromRaw("x", serving.Bytes, []int64{4194304}, nil) })
	if got > 1024 {
		t.Errorf("FromRaw of a lying BYTES shape allocated %d bytes", got)
	}
}
