package onnx_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
)

// field appends a length-delimited protobuf field.
func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// externalModel is a ModelProto whose graph has one initializer stored in
// the file named location, the way onnx.save_model(save_as_external_data)
// writes it, plus fields the walker must skip (a varint, a raw_data blob,
// an initializer in an If node's subgraph naming a second file).
func externalModel(location, sub string) []byte {
	entry := func(k, v string) []byte { return field(field(nil, 1, []byte(k)), 2, []byte(v)) }
	tensor := func(loc string) []byte {
		t := field(nil, 8, []byte("w"))                      // name
		t = protowire.AppendTag(t, 2, protowire.VarintType)  // data_type
		t = protowire.AppendVarint(t, 1)                     //
		t = field(t, 13, entry("location", loc))             // external_data
		t = field(t, 13, entry("offset", "0"))               //
		t = protowire.AppendTag(t, 14, protowire.VarintType) // data_location
		return protowire.AppendVarint(t, 1)                  // EXTERNAL
	}
	inline := field(field(nil, 8, []byte("b")), 9, make([]byte, 300)) // raw_data
	subgraph := field(nil, 5, tensor(sub))
	attr := field(field(nil, 1, []byte("then_branch")), 6, subgraph)
	node := field(field(nil, 4, []byte("If")), 5, attr)
	graph := field(field(field(field(nil, 1, node), 5, tensor(location)), 5, inline), 2, []byte("g"))
	m := protowire.AppendTag(nil, 1, protowire.VarintType) // ir_version
	m = protowire.AppendVarint(m, 9)
	return field(m, 7, graph)
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fp(t *testing.T, path string) string {
	t.Helper()
	sum, unchanged, err := onnx.Fingerprint(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := unchanged(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// The fingerprint follows the weights wherever they are: in the model file,
// or in the external data files it names (also from a subgraph), which may
// be all that a retrain changes.
func TestFingerprintCoversExternalData(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	write(t, model, externalModel("weights.bin", "sub.bin"))
	write(t, filepath.Join(dir, "weights.bin"), []byte("weights v1"))
	write(t, filepath.Join(dir, "sub.bin"), []byte("subgraph v1"))
	first := fp(t, model)
	if fp(t, model) != first {
		t.Fatal("the fingerprint is not stable")
	}
	write(t, filepath.Join(dir, "weights.bin"), []byte("weights v2"))
	second := fp(t, model)
	if second == first {
		t.Error("new external weights, same fingerprint")
	}
	write(t, filepath.Join(dir, "sub.bin"), []byte("subgraph v2"))
	if fp(t, model) == second {
		t.Error("new weights in a subgraph's external file, same fingerprint")
	}
	write(t, filepath.Join(dir, "unrelated.bin"), []byte("x"))
	third := fp(t, model)
	write(t, filepath.Join(dir, "unrelated.bin"), []byte("y"))
	if fp(t, model) != third {
		t.Error("a file the model does not name changed the fingerprint")
	}
}

// Without external data the fingerprint is the SHA-256 of the model bytes,
// from a file or from memory alike; bytes that are not ONNX still get one.
func TestFingerprintIsTheModelsSHA256(t *testing.T) {
	dir := t.TempDir()
	for _, b := range [][]byte{[]byte("not a model \xff\xff\xff"), nil, field(nil, 7, field(nil, 2, []byte("g")))} {
		path := filepath.Join(dir, "m.onnx")
		write(t, path, b)
		sum := sha256.Sum256(b)
		want := hex.EncodeToString(sum[:])
		if got := fp(t, path); got != want {
			t.Errorf("file %q: fingerprint %s, want %s", b, got, want)
		}
		if got, _, _ := onnx.Fingerprint("", b); got != want {
			t.Errorf("bytes %q: fingerprint %s, want %s", b, got, want)
		}
	}
}

// A model file replaced while it loads is reported, so the session never
// carries the fingerprint of other weights.
func TestFingerprintSeesAReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	write(t, path, []byte("v1"))
	_, unchanged, err := onnx.Fingerprint(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path+".tmp", []byte("v2"))
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	if unchanged() == nil {
		t.Error("a replaced file went unnoticed")
	}
}

// A loaded model reports its fingerprint in its metadata: the same for the
// same bytes however loaded, another for other weights.
func TestMetadataFingerprint(t *testing.T) {
	fromFile := loadFraud(t)
	b, err := os.ReadFile(fraudPath())
	if err != nil {
		t.Fatal(err)
	}
	fromBytes := loadBytes(t, "fraud", b, nil)
	sum := sha256.Sum256(b)
	if got := fromFile.Metadata().Fingerprint; got != hex.EncodeToString(sum[:]) {
		t.Errorf("Load: fingerprint %q, want the file's SHA-256 %x", got, sum)
	}
	if fromBytes.Metadata().Fingerprint != fromFile.Metadata().Fingerprint {
		t.Error("LoadBytes and Load of the same bytes disagree")
	}
	shifted, err := onnxbuild.FraudVariant(0.5)
	other := loadBytes(t, "fraud", shifted, err)
	if other.Metadata().Fingerprint == fromFile.Metadata().Fingerprint {
		t.Error("other weights, same fingerprint")
	}
}
