package serving

import (
	"slices"
	"time"
)

// TensorSpec describes one model input or output. A dim of -1 is dynamic.
type TensorSpec struct {
	Name     string
	DataType DataType
	Shape    []int64
	// Labels names the classes of an output whose last dimension holds one
	// score per class: Labels[i] is the class of column i (a classifier's
	// class labels, integer labels in decimal). Nil when the model does not
	// say. The classification extension (Classify) reports them.
	Labels []string
}

// Batchable reports whether dimension 0 is dynamic: requests may be joined
// along it.
func (s TensorSpec) Batchable() bool { return len(s.Shape) > 0 && s.Shape[0] < 0 }

// Metadata describes a model, as the protocol's model metadata endpoint
// returns it.
type Metadata struct {
	Name     string
	Version  string
	Platform string // e.g. "onnxruntime_onnx"
	// Device is where the model runs, as PyTorch and most tools name it:
	// "cpu", "cuda:0". Empty when the Predictor does not say (fakes,
	// remote models). A backend that fell back from a GPU to the CPU
	// reports "cpu", so this is the truth, not the request.
	Device string
	// Fingerprint identifies the model's content: the lowercase hex SHA-256
	// of the bytes it was loaded from (backend/onnx: the model file, and
	// the external data files it names). Two Predictors with equal
	// fingerprints compute the same function, whatever their name, version
	// or host; new weights under the same name and version get a new
	// fingerprint. A response cache keys on it, so a hot reload, a rolling
	// update or replicas on different weights never share answers. Empty
	// when the Predictor does not know its content (fakes, remote models).
	Fingerprint string
	Inputs      []TensorSpec
	Outputs     []TensorSpec
	// Unserved lists the model's outputs the Predictor cannot return, each
	// with why (an ONNX sequence of tensors, an optional): the model still
	// serves its other outputs, and a request naming one of these is refused
	// with the reason. Outputs does not list them.
	Unserved []UnservedOutput
	// How the chain serves the model, said by the layers that do it, so a
	// transport can describe it in the protocol's model configuration
	// (Triton's max_batch_size, dynamic_batching, response_cache).
	// MaxBatchRows, when positive, is the most rows a layer joins into one
	// run of the model (package batch sets it) and BatchDelay the longest
	// a request waits for company; zero when nothing batches.
	// ResponseCache reports a layer answering from a response cache
	// (package cache sets it).
	MaxBatchRows  int
	BatchDelay    time.Duration
	ResponseCache bool
}

// UnservedOutput is a model output that cannot be served, and why.
type UnservedOutput struct {
	Name   string
	Reason string
}

// unserved returns the named entry of m.Unserved.
func (m Metadata) unserved(name string) (UnservedOutput, bool) {
	for _, u := range m.Unserved {
		if u.Name == name {
			return u, true
		}
	}
	return UnservedOutput{}, false
}

// Batchable reports whether every input and output batches on dimension 0.
func (m Metadata) Batchable() bool {
	if len(m.Inputs) == 0 {
		return false
	}
	for _, s := range slices.Concat(m.Inputs, m.Outputs) {
		if !s.Batchable() {
			return false
		}
	}
	return true
}

// Input returns the spec of the named input.
func (m Metadata) Input(name string) (TensorSpec, bool) { return findSpec(m.Inputs, name) }

// Output returns the spec of the named output.
func (m Metadata) Output(name string) (TensorSpec, bool) { return findSpec(m.Outputs, name) }

func findSpec(s []TensorSpec, name string) (TensorSpec, bool) {
	for _, t := range s {
		if t.Name == name {
			return t, true
		}
	}
	return TensorSpec{}, false
}

// Matches reports whether t fits the spec: same datatype, same rank, equal
// fixed dims. It returns a message naming the first difference.
func (s TensorSpec) Matches(t Tensor) (ok bool, why string) {
	if t.DataType != s.DataType {
		return false, "datatype " + t.DataType.String() + ", want " + s.DataType.String()
	}
	if len(t.Shape) != len(s.Shape) {
		return false, "shape " + shapeString(t.Shape) + " has rank " + itoa(int64(len(t.Shape))) + ", want rank " + itoa(int64(len(s.Shape))) + " " + shapeString(s.Shape)
	}
	for i, d := range s.Shape {
		if d >= 0 && t.Shape[i] != d {
			return false, "shape " + shapeString(t.Shape) + ", want " + shapeString(s.Shape) + " (dim " + itoa(int64(i)) + ")"
		}
	}
	return true, ""
}
