package onnxbuild

import "fmt"

// Summary counts what a model's main graph holds, for tests that check a
// model's structure: this package's own models, or the optimised model
// ONNX Runtime writes (which shows the kernels it will really run).
type Summary struct {
	// Ops counts nodes by operator: "Gemm" in the default domain,
	// "com.microsoft.QGemm" in another.
	Ops map[string]int
	// Initializers counts initializers by element type, and Bytes sums
	// their raw_data (tensors written in typed fields, which this package
	// never writes, count as 0 bytes).
	Initializers map[ElemType]int
	Bytes        map[ElemType]int
}

// Summarize reads model's main graph. Subgraphs (If, Loop, Scan bodies)
// are not visited.
func Summarize(model []byte) (Summary, error) {
	s := Summary{Ops: map[string]int{}, Initializers: map[ElemType]int{}, Bytes: map[ElemType]int{}}
	var graph []byte
	err := forEachField(model, func(f field) error {
		if f.num == 7 && f.typ == bytesType {
			graph = f.b
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("onnxbuild: model: %w", err)
	}
	if graph == nil {
		return s, fmt.Errorf("onnxbuild: model has no graph")
	}
	err = forEachField(graph, func(f field) error {
		if f.typ != bytesType {
			return nil
		}
		switch f.num {
		case 1: // node
			op, err := nodeOp(f.b)
			s.Ops[op]++
			return err
		case 5: // initializer
			var elem ElemType
			raw := 0
			err := forEachField(f.b, func(tf field) error {
				switch {
				case tf.num == tensorDataType && tf.typ != bytesType:
					elem = ElemType(tf.u)
				case tf.num == tensorRawData && tf.typ == bytesType:
					raw = len(tf.b)
				}
				return nil
			})
			s.Initializers[elem]++
			s.Bytes[elem] += raw
			return err
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("onnxbuild: graph: %w", err)
	}
	return s, nil
}

// nodeOp is a NodeProto's op_type, prefixed with its domain unless that
// is the default one ("" or "ai.onnx").
func nodeOp(b []byte) (string, error) {
	var op, domain string
	err := forEachField(b, func(f field) error {
		switch {
		case f.num == 4 && f.typ == bytesType:
			op = string(f.b)
		case f.num == 7 && f.typ == bytesType:
			domain = string(f.b)
		}
		return nil
	})
	if domain != "" && domain != "ai.onnx" {
		op = domain + "." + op
	}
	return op, err
}

// Count is the number of nodes of each operator in ops, summed.
func (s Summary) Count(ops ...string) int {
	n := 0
	for _, op := range ops {
		n += s.Ops[op]
	}
	return n
}
