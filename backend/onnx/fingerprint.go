package onnx

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/servekit/servekit/serving"
)

// fingerprint is serving.Metadata.Fingerprint: the hex SHA-256 of the
// model's bytes. For a model with external data (weights in files beside
// the .onnx, which may be all that changes in a retrain) it also covers
// those files: then it is the SHA-256 of the model file's SHA-256 followed,
// for each external file in name order, by its name (u32 length first) and
// its SHA-256. The model file is read once, hashed as its protobuf is
// walked for external data locations, so a large model costs one pass at
// hashing speed and a 64 KiB buffer.
//
// unchanged reports an Unavailable error when the model file was replaced
// or rewritten since (by its identity, size and modification time): the
// session would then hold other weights than the fingerprint says, and a
// cache keyed on it would file their answers under the wrong model. Call it
// once the session is made; a repository loads again on the next change.
func fingerprint(path string, b []byte) (sum string, unchanged func() error, err error) {
	if path == "" {
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:]), func() error { return nil }, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	unchanged = func() error {
		now, err := os.Stat(path)
		if err != nil || !os.SameFile(st, now) || now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
			return serving.Errorf(serving.Unavailable, "onnx: %s changed while it was loading; load it again", path)
		}
		return nil
	}
	sum, err = hashModel(path, f)
	return sum, unchanged, err
}

// hashModel hashes the model file f at path and its external data.
func hashModel(path string, f io.Reader) (string, error) {
	h := sha256.New()
	w := &protoWalker{r: bufio.NewReaderSize(io.TeeReader(f, h), 64<<10), locations: map[string]bool{}}
	// Not ONNX, or not as this walker reads it: ONNX Runtime will say what
	// is wrong, and the fingerprint covers the file alone.
	if err := w.message(msgModel, 0, true, 0); err != nil {
		clear(w.locations)
	}
	if _, err := io.Copy(io.Discard, w.r); err != nil {
		return "", err
	}
	sum := h.Sum(nil)
	if len(w.locations) == 0 {
		return hex.EncodeToString(sum), nil
	}
	outer := sha256.New()
	outer.Write(sum)
	for _, loc := range slices.Sorted(maps.Keys(w.locations)) {
		outer.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(loc))))
		outer.Write([]byte(loc))
		fsum, err := fileSum(filepath.Join(filepath.Dir(path), loc))
		if err != nil {
			continue // ONNX Runtime reports a missing external file itself
		}
		outer.Write(fsum)
	}
	return hex.EncodeToString(outer.Sum(nil)), nil
}

func fileSum(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// The ONNX messages on the way to external data locations
// (onnx/onnx.proto3): ModelProto.graph → GraphProto.{node, initializer,
// sparse_initializer}; NodeProto.attribute → AttributeProto.{t, g,
// tensors, graphs, sparse_tensor, sparse_tensors} (subgraphs of If and
// Loop); SparseTensorProto.{values, indices}; TensorProto.external_data →
// StringStringEntryProto {key, value}, whose "location" entry names a file
// relative to the model's directory.
type msgKind uint8

const (
	msgOther msgKind = iota
	msgModel
	msgGraph
	msgNode
	msgAttribute
	msgTensor
	msgSparseTensor
	msgEntry
)

var children = map[msgKind]map[uint64]msgKind{
	msgModel:        {7: msgGraph},
	msgGraph:        {1: msgNode, 5: msgTensor, 15: msgSparseTensor},
	msgNode:         {5: msgAttribute},
	msgAttribute:    {5: msgTensor, 6: msgGraph, 10: msgTensor, 11: msgGraph, 22: msgSparseTensor, 23: msgSparseTensor},
	msgSparseTensor: {1: msgTensor, 2: msgTensor},
	msgTensor:       {13: msgEntry},
}

// maxDepth bounds the nesting followed (graphs in attributes in nodes in
// graphs…); deeper messages are skipped, not failed.
const maxDepth = 64

var errProto = errors.New("onnx: not a protobuf message this walker reads")

// protoWalker reads a protobuf stream field by field, descending only into
// the messages above and skipping everything else (tensor data included)
// without holding it.
type protoWalker struct {
	r         *bufio.Reader
	locations map[string]bool
}

// message reads the fields of one message of kind k: n bytes of it, or up
// to the end of the stream.
func (w *protoWalker) message(k msgKind, n int64, toEOF bool, depth int) error {
	var key, value string
	for toEOF || n > 0 {
		tag, c, err := w.varint()
		if toEOF && c == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errProto
		}
		n -= int64(c)
		num, typ := tag>>3, tag&7
		switch typ {
		case 0: // varint
			_, c, err = w.varint()
			n -= int64(c)
		case 1: // fixed64
			_, err = w.r.Discard(8)
			n -= 8
		case 5: // fixed32
			_, err = w.r.Discard(4)
			n -= 4
		case 2: // length-delimited
			var l uint64
			l, c, err = w.varint()
			n -= int64(c)
			if err != nil || l > 1<<40 || (!toEOF && int64(l) > n) {
				return errProto
			}
			n -= int64(l)
			switch child, ok := children[k][num]; {
			case ok && depth < maxDepth:
				err = w.message(child, int64(l), false, depth+1)
			case k == msgEntry && (num == 1 || num == 2) && l <= 4096:
				s := make([]byte, l)
				if _, err = io.ReadFull(w.r, s); num == 1 {
					key = string(s)
				} else {
					value = string(s)
				}
			default:
				_, err = w.r.Discard(int(l))
			}
		default: // groups, or not protobuf
			return errProto
		}
		if err != nil || (!toEOF && n < 0) {
			return errProto
		}
	}
	if k == msgEntry && key == "location" && value != "" {
		w.locations[value] = true
	}
	return nil
}

func (w *protoWalker) varint() (uint64, int, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := w.r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, i, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, binary.MaxVarintLen64, errProto
}
