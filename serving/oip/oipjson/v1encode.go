package oipjson

import "github.com/servekit/servekit/serving"

// V1 answers: TF Serving's and KServe V1's {"predictions": [...]}, one entry
// per row, or {"outputs": ...} for a columnar request.

// AppendV1Response writes the answer to a V1 request: {"predictions":
// [...]} split by rows when rows is true (the request had "instances"),
// else {"outputs": ...} as tensors nested by shape. One output is written
// bare, several as an object by name.
func AppendV1Response(b []byte, outs []serving.Tensor, rows bool, nf NonFinite) []byte {
	return appendV1Response(b, outs, rows, nf)
}

// appendV1Response writes {"predictions": [...]} split by rows, or
// {"outputs": ...} for columnar requests. One output is written bare, several
// as an object by name.
func appendV1Response(b []byte, outs []serving.Tensor, rows bool, nf NonFinite) []byte {
	if !rows {
		b = append(b, `{"outputs":`...)
		b = appendByName(b, outs, func(b []byte, t serving.Tensor) []byte { return appendNested(b, t, t.Shape, 0, nf) })
		return append(b, "}\n"...)
	}
	b = append(b, `{"predictions":[`...)
	n := int64(0)
	if len(outs) > 0 && len(outs[0].Shape) > 0 {
		n = outs[0].Shape[0]
	}
	for r := range n {
		if r > 0 {
			b = append(b, ',')
		}
		b = appendByName(b, outs, func(b []byte, t serving.Tensor) []byte { return appendRow(b, t, r, nf) })
	}
	return append(b, "]}\n"...)
}

// appendByName appends the one output bare with value, or several as an
// object by name.
func appendByName(b []byte, outs []serving.Tensor, value func([]byte, serving.Tensor) []byte) []byte {
	if len(outs) == 1 {
		return value(b, outs[0])
	}
	b = append(b, '{')
	for i, t := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Name)
		b = append(b, ':')
		b = value(b, t)
	}
	return append(b, '}')
}

func appendRow(b []byte, t serving.Tensor, r int64, nf NonFinite) []byte {
	if len(t.Shape) == 0 || r >= t.Shape[0] {
		return append(b, "null"...)
	}
	per := 1
	for _, d := range t.Shape[1:] {
		per *= int(d)
	}
	return appendNested(b, t, t.Shape[1:], int(r)*per, nf)
}
