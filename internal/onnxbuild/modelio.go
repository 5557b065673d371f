package onnxbuild

import "fmt"

// ValueInfo describes one graph input or output.
type ValueInfo struct {
	Name string
	// IsTensor is false for sequences, maps, optionals and sparse tensors,
	// which servekit cannot feed or return.
	IsTensor bool
	// Elem is the element type of a tensor, zero otherwise. It can be a
	// type this package does not know (complex, float8); check Elem.Valid.
	Elem ElemType
	// Dims has -1 for a dynamic dimension (dim_param or unset) and is nil
	// when the rank itself is unknown; a scalar has empty, non-nil Dims.
	Dims []int64
}

// DecodeModelIO lists the inputs and outputs of a ModelProto's main graph.
// Inputs that are also initializers are left out: older IR versions list
// weights as inputs, but a caller cannot (and need not) feed them.
func DecodeModelIO(model []byte) (inputs, outputs []ValueInfo, err error) {
	var graph []byte
	err = forEachField(model, func(f field) error {
		if f.num == 7 && f.typ == bytesType {
			graph = f.b
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("onnxbuild: model: %w", err)
	}
	if graph == nil {
		return nil, nil, fmt.Errorf("onnxbuild: model has no graph")
	}
	weights := map[string]bool{}
	var ins, outs [][]byte
	err = forEachField(graph, func(f field) error {
		if f.typ != bytesType {
			return nil
		}
		switch f.num {
		case 5: // initializer
			name, err := valueName(f.b)
			weights[name] = true
			return err
		case 15: // sparse_initializer: its values tensor carries the name
			return forEachField(f.b, func(sf field) error {
				if sf.num == 1 && sf.typ == bytesType {
					name, err := valueName(sf.b)
					weights[name] = true
					return err
				}
				return nil
			})
		case 11:
			ins = append(ins, f.b)
		case 12:
			outs = append(outs, f.b)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("onnxbuild: graph: %w", err)
	}
	for _, b := range ins {
		v, err := decodeValueInfo(b)
		if err != nil {
			return nil, nil, fmt.Errorf("onnxbuild: graph input: %w", err)
		}
		if !weights[v.Name] {
			inputs = append(inputs, v)
		}
	}
	for _, b := range outs {
		v, err := decodeValueInfo(b)
		if err != nil {
			return nil, nil, fmt.Errorf("onnxbuild: graph output: %w", err)
		}
		outputs = append(outputs, v)
	}
	return inputs, outputs, nil
}

func valueName(tensor []byte) (name string, err error) {
	err = forEachField(tensor, func(f field) error {
		if f.num == tensorName && f.typ == bytesType {
			name = string(f.b)
		}
		return nil
	})
	return name, err
}

func decodeValueInfo(b []byte) (ValueInfo, error) {
	var v ValueInfo
	err := forEachField(b, func(f field) error {
		switch {
		case f.num == 1 && f.typ == bytesType:
			v.Name = string(f.b)
		case f.num == 2 && f.typ == bytesType:
			return decodeType(f.b, &v)
		}
		return nil
	})
	return v, err
}

// decodeType reads a TypeProto; only tensor_type (field 1) is a tensor,
// every other member of its oneof leaves IsTensor false.
func decodeType(b []byte, v *ValueInfo) error {
	return forEachField(b, func(f field) error {
		if f.num != 1 || f.typ != bytesType {
			return nil
		}
		v.IsTensor = true
		return forEachField(f.b, func(tf field) error {
			switch {
			case tf.num == 1:
				v.Elem = ElemType(int32(tf.u))
			case tf.num == 2 && tf.typ == bytesType:
				v.Dims = []int64{}
				return forEachField(tf.b, func(df field) error {
					if df.num == 1 && df.typ == bytesType {
						d, err := decodeDim(df.b)
						v.Dims = append(v.Dims, d)
						return err
					}
					return nil
				})
			}
			return nil
		})
	})
}

func decodeDim(b []byte) (int64, error) {
	d := int64(-1)
	err := forEachField(b, func(f field) error {
		if f.num == 1 && f.typ != bytesType {
			d = int64(f.u)
		}
		return nil
	})
	return d, err
}
