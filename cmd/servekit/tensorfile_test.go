package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
)

// npyRaw is a .npy file with any header and data, as numpy.save lays it
// out.
func npyRaw(header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestDecodeNPY(t *testing.T) {
	be := make([]byte, 16)
	binary.BigEndian.PutUint64(be, math.Float64bits(1.5))
	binary.BigEndian.PutUint64(be[8:], math.Float64bits(-2))
	le := make([]byte, 8)
	binary.LittleEndian.PutUint64(le, uint64(math.MaxInt64))
	for _, tc := range []struct {
		name  string
		file  []byte
		shape []int
		dt    string
		data  any
	}{
		{"float32, numpy.save's padding", npyFile("<f4", "(2, 2)", []float32{1, 2, 3, 4}), []int{2, 2}, "FP32", []float32{1, 2, 3, 4}},
		{"big-endian float64", npyRaw("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }\n", be), []int{2}, "FP64", []float64{1.5, -2}},
		{"int64", npyRaw("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }\n", le), []int{1, 1}, "INT64", []int64{math.MaxInt64}},
		{"bool", npyRaw("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }\n", []byte{1, 0, 1}), []int{3}, "BOOL", []bool{true, false, true}},
		{"uint8 as numbers, not base64", npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }\n", []byte{7, 255}), []int{2}, "UINT8", []uint16{7, 255}},
		{"a scalar", npyRaw("{'descr': '<i4', 'fortran_order': False, 'shape': (), }\n", []byte{5, 0, 0, 0}), []int{}, "INT32", []int32{5}},
		{"empty", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }\n", nil), []int{0, 8}, "FP32", []float32{}},
	} {
		got, err := decodeNPY(tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got.Shape, tc.shape) || got.Datatype != tc.dt || !reflect.DeepEqual(got.Data, tc.data) {
			t.Errorf("%s: %v %s %v, want %v %s %v", tc.name, got.Shape, got.Datatype, got.Data, tc.shape, tc.dt, tc.data)
		}
	}
}

func TestDecodeNPYRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		file       []byte
	}{
		{"not npy", "magic", []byte("a,b,c\n1,2,3\n")},
		{"header longer than the file", "header of", append([]byte("\x93NUMPY\x01\x00\xff\xff"), "{}"...)},
		{"Fortran order", "Fortran", npyRaw("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", make([]byte, 4))},
		{"float16", "float32", npyRaw("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n", make([]byte, 2))},
		{"objects", "no simple dtype", npyRaw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", make([]byte, 8))},
		{"truncated data", "the file has 4", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 4))},
		{"trailing data", "the file has 12", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 12))},
		{"negative dimension", "not a shape", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", nil)},
		{"shape overflowing int", "more elements", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", make([]byte, 8))},
		{"too many dimensions", "dimensions", npyRaw("{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.Repeat("1, ", 40)+"), }\n", make([]byte, 4))},
	} {
		_, err := decodeNPY(tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// A header claims a billion elements over 8 bytes of data: refused from
// the bytes there, before anything is allocated for the claim.
func TestDecodeNPYBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("the race detector skews allocation counts; make test runs Budget tests without it")
	}
	file := npyRaw("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }\n", make([]byte, 8))
	var err error
	if n := alloctest.Bytes(3, func() { _, err = decodeNPY(file) }); n > 64<<10 || err == nil {
		t.Errorf("a billion-element header over 8 bytes: %v, allocated %d bytes, want an error within 64 KiB", err, n)
	}
}

func TestDecodeCSV(t *testing.T) {
	got, err := decodeCSV([]byte("age,income\n# a comment\n42, 38000\n7,1\n"), "INT64")
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{int64(42), int64(38000), int64(7), int64(1)}; !reflect.DeepEqual(got.Shape, []int{2, 2}) || got.Datatype != "INT64" || !reflect.DeepEqual(got.Data, want) {
		t.Errorf("got %v %s %v", got.Shape, got.Datatype, got.Data)
	}
	for _, tc := range []struct{ csv, dt, want string }{
		{"1,2\n3\n", "FP32", "wrong number of fields"},
		{"1,2\n# a comment\n3,x\n", "FP32", `line 3, column 2: "x" is not FP32`},
		{"a,b\n", "FP32", "no rows"},
		{"1\n1.5\n", "INT32", `line 2, column 1: "1.5" is not INT32`},
		{"1.5\n", "INT32", `taken as a header`},
		{"1\n", "BYTES", "--datatype"},
	} {
		_, err := decodeCSV([]byte(tc.csv), tc.dt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q as %s: %v, want an error saying %q", tc.csv, tc.dt, err, tc.want)
		}
	}
}

func TestReadBounded(t *testing.T) {
	if b, err := readBounded(strings.NewReader("12345"), 5, "x"); err != nil || string(b) != "12345" {
		t.Errorf("5 bytes under a bound of 5: %q, %v", b, err)
	}
	if _, err := readBounded(strings.NewReader("123456"), 5, "x"); err == nil || !strings.Contains(err.Error(), "--max-bytes 5") {
		t.Errorf("6 bytes under a bound of 5: %v", err)
	}
}

func TestRequestBody(t *testing.T) {
	if _, err := requestBody("-", strings.NewReader(`{"inputs": [}`), 1<<20); err == nil || !strings.Contains(err.Error(), "stdin is not a JSON object") {
		t.Errorf("broken JSON on stdin: %v", err)
	}
	if b, err := requestBody(` {"inputs": []}`, nil, 1<<20); err != nil || !strings.Contains(string(b), "inputs") {
		t.Errorf("inline JSON: %q, %v", b, err)
	}
	if _, err := requestBody("/nonexistent/req.json", nil, 1<<20); err == nil {
		t.Error("a missing file: no error")
	}
}

// FuzzDecodeNPY: no file makes the decoder panic, or allocate more than a
// small constant plus a few times the file's own size.
func FuzzDecodeNPY(f *testing.F) {
	f.Add(npyFile("<f4", "(1, 8)", features))
	f.Add(npyRaw("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 16)))
	f.Add(npyRaw("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1), }\n", []byte{1, 2, 3}))
	f.Add(npyRaw("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }\n", make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := alloctest.Once(func() { _, _ = decodeNPY(b) })
		if !alloctest.Race && n > 64<<10+4*uint64(len(b)) {
			t.Errorf("a %d-byte file: %d bytes allocated", len(b), n)
		}
	})
}
