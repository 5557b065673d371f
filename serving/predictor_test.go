package serving_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// layer is a middleware that owns something to close and exposes what it
// wraps; as the ownership rule asks, its Close closes what it wraps.
type layer struct {
	next   serving.Predictor
	closed *[]string
	name   string
	err    error
}

func (l *layer) Predict(ctx context.Context, r *serving.Request) (*serving.Response, error) {
	return l.next.Predict(ctx, r)
}
func (l *layer) Unwrap() serving.Predictor { return l.next }
func (l *layer) Close() error {
	*l.closed = append(*l.closed, l.name)
	return errors.Join(l.err, serving.Close(l.next))
}

// pass is a layer with nothing to close: no Close method at all.
type pass struct{ next serving.Predictor }

func (p pass) Predict(ctx context.Context, r *serving.Request) (*serving.Response, error) {
	return p.next.Predict(ctx, r)
}
func (p pass) Unwrap() serving.Predictor { return p.next }

func TestCloseClosesTheChainOutermostFirst(t *testing.T) {
	var order []string
	model := servingtest.Linear(2)
	errA := errors.New("a failed")
	p := serving.Chain(
		func(n serving.Predictor) serving.Predictor {
			return &layer{next: n, closed: &order, name: "a", err: errA}
		},
		func(n serving.Predictor) serving.Predictor { return pass{n} },
		func(n serving.Predictor) serving.Predictor { return &layer{next: n, closed: &order, name: "b"} },
	)(model)
	err := serving.Close(pass{p})
	if !errors.Is(err, errA) {
		t.Errorf("Close = %v, want it to carry %v", err, errA)
	}
	if len(order) != 2 || order[0] != "a" || order[1] != "b" {
		t.Errorf("close order %v, want [a b]", order)
	}
	if n := model.Closes(); n != 1 {
		t.Errorf("model closed %d times through the chain, want 1", n)
	}
	md, ok := serving.MetadataOf(p)
	if !ok || md.Name != "linear" {
		t.Errorf("MetadataOf through the chain = %+v, %v", md, ok)
	}
	if serving.IsReady(p) {
		t.Error("IsReady true with a closed model inside")
	}
}

func TestMetadataValidate(t *testing.T) {
	md := serving.Metadata{
		Name: "m",
		Inputs: []serving.TensorSpec{
			{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 2}},
			{Name: "b", DataType: serving.Int64, Shape: []int64{-1}},
		},
		Outputs:  []serving.TensorSpec{{Name: "y", DataType: serving.FP32, Shape: []int64{-1, 1}}},
		Unserved: []serving.UnservedOutput{{Name: "parts", Reason: "it is a seq(tensor(float))"}},
	}
	a, _ := serving.NewTensor("a", []int64{2, 2}, []float32{1, 2, 3, 4})
	b, _ := serving.NewTensor("b", []int64{2}, []int64{1, 2})
	b3, _ := serving.NewTensor("b", []int64{3}, []int64{1, 2, 3})
	a3, _ := serving.NewTensor("a", []int64{1, 3}, []float32{1, 2, 3})
	af64, _ := serving.NewTensor("a", []int64{1, 2}, []float64{1, 2})
	c, _ := serving.NewTensor("c", []int64{2}, []int64{1, 2})
	cases := []struct {
		name string
		req  serving.Request
		code serving.Code
	}{
		{"ok", serving.Request{Inputs: []serving.Tensor{a, b}}, serving.OK},
		{"ok subset of outputs", serving.Request{Inputs: []serving.Tensor{b, a}, Outputs: []string{"y"}}, serving.OK},
		{"missing", serving.Request{Inputs: []serving.Tensor{a}}, serving.InvalidArgument},
		{"unknown", serving.Request{Inputs: []serving.Tensor{a, b, c}}, serving.InvalidArgument},
		{"duplicate", serving.Request{Inputs: []serving.Tensor{a, a, b}}, serving.InvalidArgument},
		{"fixed dim", serving.Request{Inputs: []serving.Tensor{a3, b}}, serving.InvalidArgument},
		{"dtype", serving.Request{Inputs: []serving.Tensor{af64, b}}, serving.InvalidArgument},
		{"rows disagree", serving.Request{Inputs: []serving.Tensor{a, b3}}, serving.InvalidArgument},
		{"unknown output", serving.Request{Inputs: []serving.Tensor{a, b}, Outputs: []string{"z"}}, serving.NotFound},
		{"unserved output", serving.Request{Inputs: []serving.Tensor{a, b}, Outputs: []string{"parts"}}, serving.Unimplemented},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := serving.CodeOf(md.Validate(&c.req)); got != c.code {
				t.Errorf("code %v (%v), want %v", got, md.Validate(&c.req), c.code)
			}
		})
	}
}

func TestParams(t *testing.T) {
	p := serving.Params{"timeout": float64(1500), "priority": "2", "cache_bypass": "true", "bad": 1.5}
	if d, ok := p.Timeout(); !ok || d.Microseconds() != 1500 {
		t.Errorf("Timeout = %v %v", d, ok)
	}
	if n, ok := p.Int("priority"); !ok || n != 2 {
		t.Errorf("Int(priority) = %v %v", n, ok)
	}
	if b, ok := p.Bool(serving.ParamCacheBypass); !ok || !b {
		t.Errorf("Bool = %v %v", b, ok)
	}
	if _, ok := p.Int("bad"); ok {
		t.Error("1.5 read as an integer")
	}
}

func TestLinearConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New:           func(*testing.T) serving.Predictor { return servingtest.Linear(4) },
		Request:       func() *serving.Request { return servingtest.Rows(4, 3, 1) },
		Deterministic: true,
	})
}

func TestSelectOutputs(t *testing.T) {
	a, _ := serving.NewTensor("a", []int64{1}, []float32{1})
	b, _ := serving.NewTensor("b", []int64{1}, []float32{2})
	resp := &serving.Response{Outputs: []serving.Tensor{a, b}}
	names := func(ts []serving.Tensor) (n []string) {
		for _, t := range ts {
			n = append(n, t.Name)
		}
		return n
	}
	for _, c := range []struct{ ask, want []string }{
		{nil, []string{"a", "b"}},
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"b", "a"}, []string{"b", "a"}},
		{[]string{"b"}, []string{"b"}},
	} {
		got, err := serving.SelectOutputs(&serving.Request{Outputs: c.ask}, resp)
		if err != nil || !slices.Equal(names(got), c.want) {
			t.Errorf("SelectOutputs(%v) = %v, %v; want %v", c.ask, names(got), err, c.want)
		}
	}
	_, err := serving.SelectOutputs(&serving.Request{Model: "m", Outputs: []string{"c"}}, resp)
	if serving.CodeOf(err) != serving.NotFound {
		t.Errorf("an output the answer lacks: %v, want NotFound", err)
	}
}
