package serving

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Request asks a model for a prediction. Middleware may read it from many
// goroutines at once; anything that changes it works on a Clone.
type Request struct {
	// ID is echoed in the Response (the protocol's "id"); may be empty.
	ID string
	// Model and Version name what should answer. Version may be empty: the
	// server or a rollout router picks one.
	Model   string
	Version string
	// Inputs are the input tensors, at most one per name.
	Inputs []Tensor
	// Outputs names the outputs wanted; empty means all of them.
	Outputs []string
	// Params carries protocol parameters (see the Param* names).
	Params Params
	// Key routes sticky rollouts: the same key reaches the same version
	// (a user or session id). It is never part of the model's input.
	Key string
}

// Input returns the input tensor with the given name.
func (r *Request) Input(name string) (Tensor, bool) { return find(r.Inputs, name) }

// Clone copies the request's slices and map; tensor data stays shared.
func (r *Request) Clone() *Request {
	c := *r
	c.Inputs = slices.Clone(r.Inputs)
	c.Outputs = slices.Clone(r.Outputs)
	c.Params = maps.Clone(r.Params)
	return &c
}

// Rows is the size of dimension 0 of the first input, the batch size of
// models that batch on it; 0 for no inputs or a scalar.
func (r *Request) Rows() int64 {
	if len(r.Inputs) == 0 || len(r.Inputs[0].Shape) == 0 {
		return 0
	}
	return r.Inputs[0].Shape[0]
}

// Response is a model's answer.
type Response struct {
	ID    string
	Model string
	// Version is the version that really answered, which a rollout router
	// may have chosen.
	Version string
	Outputs []Tensor
	Params  Params
}

// Output returns the output tensor with the given name.
func (r *Response) Output(name string) (Tensor, bool) { return find(r.Outputs, name) }

// SelectOutputs returns the outputs of resp that req asked for, in the
// order asked, or all of them when req names none: what a transport writes
// back. An output the answer lacks is a NotFound error naming it.
func SelectOutputs(req *Request, resp *Response) ([]Tensor, error) {
	if len(req.Outputs) == 0 {
		return resp.Outputs, nil
	}
	if len(req.Outputs) == len(resp.Outputs) { // the usual case: already in order
		same := true
		for i, n := range req.Outputs {
			same = same && resp.Outputs[i].Name == n
		}
		if same {
			return resp.Outputs, nil
		}
	}
	out := make([]Tensor, 0, len(req.Outputs))
	for _, n := range req.Outputs {
		t, ok := resp.Output(n)
		if !ok {
			return nil, Errorf(NotFound, "serving: model %q gave no output %q", req.Model, n)
		}
		out = append(out, t)
	}
	return out, nil
}

func find(ts []Tensor, name string) (Tensor, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Parameter names servekit understands, as the Open Inference Protocol and
// Triton spell them where they have one.
const (
	// ParamTimeout is the request's time budget in microseconds (Triton).
	ParamTimeout = "timeout"
	// ParamPriority orders queued requests: 1 is the highest; 0 or absent
	// means the default level (Triton).
	ParamPriority = "priority"
	// ParamCacheBypass, when true, skips the response cache both ways.
	ParamCacheBypass = "cache_bypass"
	// ParamRoutingKey carries Request.Key in protocols that have no field for
	// it; transports move it there.
	ParamRoutingKey = "routing_key"
)

// Params are protocol parameters: string, bool, int64 or float64 values (JSON
// numbers arrive as float64 or int64).
type Params map[string]any

// Int returns an integer parameter, accepting whole float64s and decimal
// strings as JSON clients send them.
func (p Params) Int(key string) (int64, bool) {
	switch v := p[key].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Bool returns a boolean parameter, accepting "true"/"false" strings.
func (p Params) Bool(key string) (bool, bool) {
	switch v := p[key].(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return false, false
}

// Timeout returns ParamTimeout as a duration, if set and positive.
func (p Params) Timeout() (time.Duration, bool) {
	us, ok := p.Int(ParamTimeout)
	if !ok || us <= 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}
