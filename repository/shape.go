package repository

import (
	"context"
	"fmt"
	"slices"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/modelconfigpb"
)

// conform checks a loaded version against the configuration's inputs,
// outputs and max_batch_size, as Triton's ONNX Runtime backend checks a
// model at load, and returns it as clients are to see it: with the
// configured shapes (reshape), only the configured outputs, and at most
// max_batch_size rows a request. A configuration that says none of these
// leaves the Predictor as it is. On error it returns p, for the caller to
// close.
//
// The rules are Triton's: with max_batch_size > 0 every listed tensor
// batches on a first dimension the model leaves dynamic and dims leave
// out; the model's remaining dims must equal the configured ones (reshape's
// when given), where the model's are not dynamic; every model input must
// be listed, since servekit does not complete a configuration; a model
// output that is not listed is not served.
func conform(p serving.Predictor, c *Config) (serving.Predictor, error) {
	m := c.model()
	if len(m.Input) == 0 && len(m.Output) == 0 && m.MaxBatchSize == 0 {
		return p, nil
	}
	md, ok := serving.MetadataOf(p)
	if !ok {
		return p, serving.Errorf(serving.InvalidArgument, "repository: %s sets inputs, outputs or max_batch_size, but the loaded model does not describe itself (serving.Describer): there is nothing to check them against", c.file)
	}
	s := &shaped{next: p, md: md, maxRows: int64(m.MaxBatchSize), batched: m.MaxBatchSize > 0,
		in: map[string][]int64{}, out: map[string][]int64{}}
	var err error
	if s.md.Inputs, err = s.inputs(md, m); err == nil {
		s.md.Outputs, err = s.outputs(md, m)
	}
	if err != nil {
		return p, serving.Errorf(serving.InvalidArgument, "repository: %s does not fit the model: %v", c.file, err)
	}
	return s, nil
}

// inputs checks the configured inputs and returns them as clients see
// them.
func (s *shaped) inputs(md serving.Metadata, m *modelconfigpb.ModelConfig) ([]serving.TensorSpec, error) {
	if len(m.Input) == 0 {
		return md.Inputs, s.allBatch("input", md.Inputs)
	}
	var specs []serving.TensorSpec
	for _, in := range m.Input {
		spec, err := s.tensor("input", in.Name, in.DataType, in.Dims, in.Reshape, md.Inputs)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	for _, mi := range md.Inputs {
		if !slices.ContainsFunc(m.Input, func(in *modelconfigpb.ModelInput) bool { return in.Name == mi.Name }) {
			return nil, fmt.Errorf("the model's input %q is not listed (servekit does not complete a configuration: list every input)", mi.Name)
		}
	}
	return specs, nil
}

// outputs checks the configured outputs and returns them as clients see
// them; only those are served.
func (s *shaped) outputs(md serving.Metadata, m *modelconfigpb.ModelConfig) ([]serving.TensorSpec, error) {
	if len(m.Output) == 0 {
		return md.Outputs, s.allBatch("output", md.Outputs)
	}
	var specs []serving.TensorSpec
	for _, out := range m.Output {
		spec, err := s.tensor("output", out.Name, out.DataType, out.Dims, out.Reshape, md.Outputs)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
		s.outs = append(s.outs, out.Name)
	}
	if len(s.outs) == len(md.Outputs) {
		s.outs = nil // all of them: nothing to select (names are unique and the model's)
	}
	return specs, nil
}

// tensor checks one configured tensor against the model's and returns
// the client's spec; a reshape is recorded for Predict.
func (s *shaped) tensor(what, name string, dt modelconfigpb.DataType, dims []int64, reshape *modelconfigpb.ModelTensorReshape, model []serving.TensorSpec) (serving.TensorSpec, error) {
	i := slices.IndexFunc(model, func(t serving.TensorSpec) bool { return t.Name == name })
	if i < 0 {
		names := make([]string, len(model))
		for j, t := range model {
			names[j] = t.Name
		}
		return serving.TensorSpec{}, fmt.Errorf("%s %q: the model has no such %s (it has %v)", what, name, what, names)
	}
	spec := model[i]
	want, _ := fromTritonType(dt) // checked with the config
	if want != spec.DataType {
		return serving.TensorSpec{}, fmt.Errorf("%s %q: data_type %v, but the model's is %v", what, name, dt, spec.DataType)
	}
	inner := dims
	if reshape != nil {
		inner = reshape.Shape
		if what == "input" {
			s.in[name] = inner
		} else {
			s.out[name] = dims
		}
	}
	if err := compareDims(spec.Shape, inner, s.batched); err != nil {
		return serving.TensorSpec{}, fmt.Errorf("%s %q: %v", what, name, err)
	}
	out := serving.TensorSpec{Name: name, DataType: want, Shape: s.full(dims)}
	if reshape == nil {
		out.Labels = spec.Labels // a classifier's class labels, for the classification extension
	}
	return out, nil
}

// compareDims is Triton's rule: a batching configuration needs a dynamic
// first dim in the model; then the ranks agree, and each of the model's
// fixed dims equals the configured one.
func compareDims(model, config []int64, batched bool) error {
	shape := model
	if batched {
		if len(model) == 0 || model[0] != -1 {
			return fmt.Errorf("max_batch_size > 0, but the model's shape %v has no dynamic first (batch) dimension", model)
		}
		shape = model[1:]
	}
	if len(shape) != len(config) {
		return fmt.Errorf("the model's shape %v does not match the configured %v", model, config)
	}
	for i, d := range shape {
		if d != -1 && d != config[i] {
			return fmt.Errorf("the model's shape %v does not match the configured %v", model, config)
		}
	}
	return nil
}

func (s *shaped) allBatch(what string, specs []serving.TensorSpec) error {
	if !s.batched {
		return nil
	}
	for _, t := range specs {
		if !t.Batchable() {
			return fmt.Errorf("max_batch_size > 0, but the model's %s %q has shape %v, without a dynamic first (batch) dimension", what, t.Name, t.Shape)
		}
	}
	return nil
}

func (s *shaped) full(dims []int64) []int64 {
	if !s.batched {
		return slices.Clone(dims)
	}
	return append([]int64{-1}, dims...)
}

// shaped serves a model as its configuration describes it.
type shaped struct {
	next    serving.Predictor
	md      serving.Metadata // as clients see it
	maxRows int64            // max_batch_size; 0: no bound
	batched bool             // dims leave out a first, batch dimension
	in      map[string][]int64
	out     map[string][]int64 // by name: the client's dims for a reshaped output
	outs    []string           // the configured outputs; nil: the model's
}

var (
	_ serving.Predictor = (*shaped)(nil)
	_ serving.Describer = (*shaped)(nil)
	_ serving.Wrapper   = (*shaped)(nil)
)

func (s *shaped) Metadata() serving.Metadata { return s.md }

func (s *shaped) Unwrap() serving.Predictor { return s.next }

// Predict checks the request against the configured tensors (Triton
// refuses what does not fit them, even where the model itself would take
// it), reshapes, asks the model only for the configured outputs, and
// reshapes those back.
func (s *shaped) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if err := s.md.Validate(req); err != nil {
		return nil, err
	}
	if s.maxRows > 0 {
		if rows := req.Rows(); rows > s.maxRows {
			return nil, serving.Errorf(serving.InvalidArgument, "repository: model %q: a request of %d rows; max_batch_size is %d", req.Model, rows, s.maxRows)
		}
	}
	inner := req
	if len(s.in) > 0 || (len(req.Outputs) == 0 && s.outs != nil) {
		c := *req
		if len(s.in) > 0 {
			c.Inputs = slices.Clone(req.Inputs)
		}
		for i, t := range c.Inputs {
			if target, ok := s.in[t.Name]; ok {
				shape, err := reshaped(t.Shape, target, s.batched)
				if err != nil {
					return nil, serving.Errorf(serving.InvalidArgument, "repository: model %q input %q: %v", req.Model, t.Name, err)
				}
				c.Inputs[i].Shape = shape
			}
		}
		if len(c.Outputs) == 0 {
			c.Outputs = s.outs
		}
		inner = &c
	}
	resp, err := s.next.Predict(ctx, inner)
	if err != nil || len(s.out) == 0 {
		return resp, err
	}
	out := *resp
	out.Outputs = slices.Clone(resp.Outputs)
	for i, t := range out.Outputs {
		if target, ok := s.out[t.Name]; ok {
			shape, err := reshaped(t.Shape, target, s.batched)
			if err != nil {
				return nil, serving.Errorf(serving.Internal, "repository: model %q output %q: %v", req.Model, t.Name, err)
			}
			out.Outputs[i].Shape = shape
		}
	}
	return &out, nil
}

// reshaped gives a tensor of shape the shape target (plus its batch
// dimension), working out target's one -1 from the element count.
func reshaped(shape, target []int64, batched bool) ([]int64, error) {
	total, err := serving.NumElements(shape)
	if err != nil {
		return nil, err
	}
	var out []int64
	if batched {
		out = append(out, shape[0]) // rank ≥ 1: Validate or the model's spec
		if shape[0] > 0 {
			total /= shape[0]
		}
	}
	known, dyn := int64(1), -1
	for i, d := range target {
		if d < 0 {
			dyn = i
			continue
		}
		known *= d
	}
	out = append(out, target...)
	switch {
	case dyn >= 0 && known > 0 && total%known == 0:
		out[len(out)-len(target)+dyn] = total / known
	case dyn >= 0 && total == 0:
		out[len(out)-len(target)+dyn] = 0
	case dyn >= 0 || known != total:
		return nil, fmt.Errorf("shape %v does not reshape to %v", shape, target)
	}
	return out, nil
}
