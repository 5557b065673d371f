package serving

import (
	"slices"
	"testing"
)

// Metadata.Validate checks a request whose inputs come in the model's
// order by a few comparisons (inOrder) and leaves every other request,
// and every error, to the general path (validate). These tests hold the
// fast path to its promise: it accepts the requests clients send, and
// nothing the general path refuses, so which path ran never shows.

func mustTensor(t *testing.T, name string, dt DataType, shape []int64, data any) Tensor {
	t.Helper()
	x, err := FromSlice(name, dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestValidateInOrder(t *testing.T) {
	multi := Metadata{Name: "multi", Inputs: []TensorSpec{
		{Name: "a", DataType: FP32, Shape: []int64{-1, 4}},
		{Name: "b", DataType: Int64, Shape: []int64{-1, 2}},
	}, Outputs: []TensorSpec{{Name: "sum", DataType: FP32, Shape: []int64{-1, 1}}},
		Unserved: []UnservedOutput{{Name: "seq", Reason: "it is a sequence"}}}
	fixed := Metadata{Name: "fixed", Inputs: []TensorSpec{{Name: "x", DataType: FP32, Shape: []int64{2, 3}}}}
	scalar := Metadata{Name: "scalar", Inputs: []TensorSpec{{Name: "s", DataType: FP16, Shape: []int64{}}}}

	a := func(rows int64) Tensor { return mustTensor(t, "a", FP32, []int64{rows, 4}, make([]float32, rows*4)) }
	b := func(rows int64) Tensor { return mustTensor(t, "b", Int64, []int64{rows, 2}, make([]int64, rows*2)) }
	with := func(x Tensor, f func(*Tensor)) Tensor {
		x.Shape = slices.Clone(x.Shape)
		f(&x)
		return x
	}
	in := func(ts ...Tensor) *Request { return &Request{Inputs: ts} }
	x := mustTensor(t, "x", FP32, []int64{2, 3}, make([]float32, 6))
	for _, c := range []struct {
		name string
		md   Metadata
		req  *Request
		fast bool   // the fast path must accept it
		err  string // the error, for a request the model refuses
	}{
		{"in order", multi, in(a(3), b(3)), true, ""},
		{"zero rows", multi, in(a(0), b(0)), true, ""},
		{"with outputs", multi, &Request{Inputs: []Tensor{a(1), b(1)}, Outputs: []string{"sum"}}, true, ""},
		{"fixed dims", fixed, in(x), true, ""},
		{"scalar", scalar, in(mustTensor(t, "s", FP16, []int64{}, []uint16{1})), true, ""},
		{"reversed", multi, in(b(3), a(3)), false, ""}, // valid, for the general path
		{"unknown output", multi, &Request{Inputs: []Tensor{a(1), b(1)}, Outputs: []string{"nope"}}, true,
			`serving: model "multi" has no output "nope" (outputs: sum)`},
		{"unserved output", multi, &Request{Inputs: []Tensor{a(1), b(1)}, Outputs: []string{"seq"}}, true,
			`serving: model "multi" cannot serve output "seq": it is a sequence`},
		{"rows differ", multi, in(a(3), b(2)), false, `serving: model "multi" input "b" has 2 rows, other inputs 3`},
		{"one missing", multi, in(a(3)), false, `serving: model "multi": missing input "b" (INT64[-1,2])`},
		{"extra input", multi, in(a(3), b(3), mustTensor(t, "c", FP32, []int64{1}, []float32{1})), false,
			`serving: model "multi" has no input "c" (inputs: a, b)`},
		{"twice", multi, in(a(3), a(3)), false, `serving: input "a" given twice`},
		{"unknown name", multi, in(a(3), with(b(3), func(t *Tensor) { t.Name = "c" })), false,
			`serving: model "multi" has no input "c" (inputs: a, b)`},
		{"wrong datatype", multi, in(a(3), with(b(3), func(t *Tensor) { t.DataType = Int32 })), false,
			`serving: model "multi" input "b": datatype INT32, want INT64`},
		{"datatype not the data's", multi, in(with(mustTensor(t, "a", Int32, []int64{3, 4}, make([]int32, 12)), func(t *Tensor) { t.DataType = FP32 }), b(3)), false,
			`serving: tensor "a": FP32 data must be []float32, got []int32`},
		{"wrong rank", multi, in(with(a(3), func(t *Tensor) { t.Shape = []int64{12} }), b(3)), false,
			`serving: model "multi" input "a": shape [12] has rank 1, want rank 2 [-1,4]`},
		{"wrong fixed dim", multi, in(with(a(3), func(t *Tensor) { t.Shape = []int64{2, 6} }), b(3)), false,
			`serving: model "multi" input "a": shape [2,6], want [-1,4] (dim 1)`},
		{"shape not the data's", multi, in(with(a(3), func(t *Tensor) { t.Shape[0] = 4 }), b(4)), false,
			`serving: tensor "a": shape [4 4] holds 16 elements, data has 12`},
		{"negative dim", multi, in(with(a(0), func(t *Tensor) { t.Shape[0] = -1 }), b(0)), false,
			`tensor "a": serving: shape [-1 4]: dim 0 is negative`},
		{"overflowing dims", multi, in(with(a(1), func(t *Tensor) { t.Shape[0] = 1 << 62 }), with(b(1), func(t *Tensor) { t.Shape[0] = 1 << 62 })), false,
			`tensor "a": serving: shape [4611686018427387904 4]: more than 2147483648 elements`},
		{"fixed model, wrong dim", fixed, in(with(x, func(t *Tensor) { t.Shape = []int64{3, 2} })), false,
			`serving: model "fixed" input "x": shape [3,2], want [2,3] (dim 0)`},
		{"zero tensor", multi, in(Tensor{Name: "a", DataType: FP32, Shape: []int64{0, 4}}, b(0)), false,
			`serving: tensor "a": FP32 data must be []float32, got nil`},
	} {
		fast := inOrder(c.md.Inputs, c.req)
		err := c.md.Validate(c.req)
		general := c.md.validate(c.req)
		if fast && general != nil && c.req.Outputs == nil {
			t.Errorf("%s: the fast path accepts what the general one refuses: %v", c.name, general)
		}
		if c.fast && !fast {
			t.Errorf("%s: the fast path refuses a request clients send (%v)", c.name, general)
		}
		if got := errText(err); got != c.err || errText(general) != c.err {
			t.Errorf("%s: Validate says %q, the general path %q, want %q", c.name, got, errText(general), c.err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzValidateInOrder builds a model's inputs and a request from the
// fuzzer's bytes, the request mostly the model's inputs with a few
// changes (order, names, datatypes, dims, data), and checks that the fast
// path accepts only what the general path accepts, that Validate answers
// as the general path does, word for word, and that the constructors' fast
// check (holds, lenAs) agrees with Tensor.Validate.
func FuzzValidateInOrder(f *testing.F) {
	f.Add([]byte{2, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 17, 33, 65, 129, 7, 200, 3, 14, 15, 92, 65, 35})
	f.Add([]byte{1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 7, 0, 0}) // a [-1], b [-1]: 1 row and 2
	f.Fuzz(func(t *testing.T, b []byte) {
		next := func() byte {
			if len(b) == 0 {
				return 0
			}
			v := b[0]
			b = b[1:]
			return v
		}
		names := []string{"a", "b", "c", "input"}
		types := []DataType{FP32, Int64, FP16, Bytes, Bool, InvalidType}
		dims := []int64{-1, 0, 1, 2, 3, 1 << 40, -2}
		md := Metadata{Name: "m"}
		for range int(next()%3) + 1 {
			s := TensorSpec{Name: names[next()%4], DataType: types[next()%5]}
			for range int(next() % 3) {
				d := dims[next()%4]
				s.Shape = append(s.Shape, d)
			}
			md.Inputs = append(md.Inputs, s)
		}
		req := &Request{}
		rows := int64(next() % 3)
		for _, s := range md.Inputs {
			op := next()
			r := rows
			if op%8 == 7 {
				r = rows + 1 // rows other than the other inputs'
			}
			shape := make([]int64, len(s.Shape))
			for k, d := range s.Shape {
				shape[k] = d
				if d < 0 {
					shape[k] = r
				}
			}
			switch op % 8 {
			case 1:
				shape = append(shape, 1)
			case 2:
				if len(shape) > 0 {
					shape[next()%byte(len(shape))] = dims[next()%byte(len(dims))]
				}
			}
			n, err := NumElements(shape)
			if err != nil || n > 64 {
				n = int64(next() % 8)
			}
			dt := s.DataType
			if op%8 == 3 {
				dt = types[next()%byte(len(types))]
			}
			data := makeData(types[next()%5], int(n))
			if op%8 != 4 {
				data = makeData(s.DataType, int(n))
			}
			if op%8 == 5 {
				data = makeData(s.DataType, int(n)+1)
			}
			name := s.Name
			if op%8 == 6 {
				name = names[next()%4]
			}
			x := Tensor{Name: name, DataType: dt, Shape: shape, data: data}
			req.Inputs = append(req.Inputs, x)

			// The constructors' check agrees with Validate.
			got, ok := lenAs(x.DataType, x.data)
			if ok != (x.DataType.Valid() && goTypeNameOf(x.data) == goTypeName(x.DataType)) {
				t.Fatalf("lenAs(%v, %T) = %v, Go type names say otherwise", x.DataType, x.data, ok)
			}
			if ok && holds(x.Shape, got) {
				if err := x.Validate(); err != nil {
					t.Fatalf("the constructors' check accepts %v %v of %d elements, Validate refuses: %v", x.DataType, x.Shape, got, err)
				}
			}
		}
		switch next() % 4 {
		case 1:
			if len(req.Inputs) > 1 {
				req.Inputs[0], req.Inputs[1] = req.Inputs[1], req.Inputs[0]
			}
		case 2:
			req.Inputs = req.Inputs[:len(req.Inputs)-1]
		case 3:
			req.Inputs = append(req.Inputs, req.Inputs[0])
		}
		fast := inOrder(md.Inputs, req)
		general := md.validate(req)
		if fast && general != nil {
			t.Fatalf("the fast path accepts a request the general path refuses (%v): %+v for %+v", general, req.Inputs, md.Inputs)
		}
		if got := errText(md.Validate(req)); got != errText(general) {
			t.Fatalf("Validate says %q, the general path %q", got, errText(general))
		}
	})
}

// TestHoldsAgreesWithNumElements: the constructors' shape check accepts
// only shapes NumElements accepts, with the same count.
func TestHoldsAgreesWithNumElements(t *testing.T) {
	big := int64(MaxElements)
	for _, shape := range [][]int64{
		nil, {}, {0}, {1}, {3, 4}, {0, 1 << 40}, {big}, {big, 1}, {big, 2}, {big + 1},
		{-1}, {2, -3}, {1 << 16, 1 << 15}, {1 << 16, 1 << 16}, {1 << 62, 4},
		make([]int64, MaxRank), make([]int64, MaxRank+1),
	} {
		want, err := NumElements(shape)
		for _, n := range []int64{want, want + 1, 0, 1} {
			if holds(shape, int(n)) && (err != nil || n != want) {
				t.Errorf("holds(%v, %d) accepts; NumElements: %d, %v", shape, n, want, err)
			}
		}
		if err == nil && len(shape) <= MaxRank && !slices.ContainsFunc(shape, func(d int64) bool { return d > big }) && !holds(shape, int(want)) {
			t.Errorf("holds(%v, %d) refuses a shape NumElements accepts", shape, want)
		}
	}
}
