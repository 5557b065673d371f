package onnxbuild_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// backendData is where Debian's libonnx-testdata puts ONNX's backend test
// suite (node/, pytorch-converted/, pytorch-operator/, simple/);
// ONNX_TESTDATA points elsewhere.
func backendData(t *testing.T) string {
	dir := os.Getenv("ONNX_TESTDATA")
	if dir == "" {
		dir = "/usr/share/libonnx-testdata/data"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("ONNX backend test data not found (apt-get install libonnx-testdata or set ONNX_TESTDATA): %v", err)
	}
	return dir
}

// TestBackendTestData parses every model of ONNX's backend suite and, where
// all inputs and outputs are plain tensors, every tensor file of its test
// cases, checking the tensor against the graph's declared type and shape
// and that re-encoding is lossless. The .pb files of models with sequence,
// map or optional values are SequenceProto and friends, not TensorProto,
// so they are only counted.
func TestBackendTestData(t *testing.T) {
	root := backendData(t)
	var models, tensorModels, tensors, skippedFiles int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "model.onnx" {
			return err
		}
		models++
		model, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ins, outs, err := onnxbuild.DecodeModelIO(model)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		sets, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "test_data_set_*", "*.pb"))
		if !plainTensors(ins) || !plainTensors(outs) {
			skippedFiles += len(sets)
			return nil
		}
		tensorModels++
		for _, pb := range sets {
			tensors++
			checkTensorFile(t, pb, ins, outs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if models == 0 {
		t.Fatalf("no model.onnx under %s", root)
	}
	t.Logf("%s: %d models (%d with plain tensor I/O), %d tensor files decoded, %d non-tensor files skipped",
		root, models, tensorModels, tensors, skippedFiles)
}

func plainTensors(vs []onnxbuild.ValueInfo) bool {
	for _, v := range vs {
		if !v.IsTensor || !v.Elem.Valid() {
			return false
		}
	}
	return true
}

func checkTensorFile(t *testing.T, path string, ins, outs []onnxbuild.ValueInfo) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	td, err := onnxbuild.DecodeTensor(b)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	// input_3.pb belongs to the model's fourth input.
	kind, num, _ := strings.Cut(strings.TrimSuffix(filepath.Base(path), ".pb"), "_")
	i, _ := strconv.Atoi(num)
	decl := outs
	if kind == "input" {
		decl = ins
	}
	if i < len(decl) {
		v := decl[i]
		// Two quirks of the suite itself (ONNX 1.12), checked with protoc:
		// BFLOAT16 data was written from numpy, which lacks the type, so
		// the files say UINT16; CastLike's "like" input is a [1] tensor
		// whatever the declared shape, as only its type matters.
		bf16AsUint16 := v.Elem == onnxbuild.BFloat16 && td.Elem == onnxbuild.Uint16
		castLike := strings.Contains(path, "test_castlike_") && kind == "input" && i == 1
		if v.Elem != td.Elem && !bf16AsUint16 {
			t.Errorf("%s: element type %v, model declares %v", path, td.Elem, v.Elem)
		}
		if v.Dims != nil && len(v.Dims) != len(td.Dims) && !castLike {
			t.Errorf("%s: shape %v, model declares %v", path, td.Dims, v.Dims)
		}
	}
	// Compare encodings, not values: NaN != NaN, but its bits survive.
	once, err := onnxbuild.EncodeTensor(td)
	if err != nil {
		t.Errorf("%s: encode: %v", path, err)
		return
	}
	again, err := onnxbuild.DecodeTensor(once)
	if err != nil {
		t.Errorf("%s: decode of our encoding: %v", path, err)
		return
	}
	twice, err := onnxbuild.EncodeTensor(again)
	if err != nil || !bytes.Equal(once, twice) {
		t.Errorf("%s: round trip changed the tensor (%v)", path, err)
	}
}
