package grpcapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// The hostile requests of issue 18 over gRPC, Connect and Connect JSON: row
// 6 (an oversized message, a gzip bomb) and the rows of the REST table
// carried in protobuf (empty inputs, lying shapes, tiny elements of every
// datatype, many parameters, outputs and dims), for the cost-budget test
// and as fuzz seeds.

const inferPath = "/inference.GRPCInferenceService/ModelInfer"

// hostile is one request: its transport ("gRPC typed", "gRPC raw",
// "Connect JSON", ...), the message (protobuf or JSON) and how it travels.
type hostile struct {
	name      string
	transport string
	msg       []byte
	json      bool // Connect's unary JSON; else gRPC framing
	gzip      bool // the message compressed
	declare   int  // a message length to declare other than len(msg), 0 for none
}

// framed is the request body as it travels: the message, compressed if
// asked, in gRPC's length-prefixed frame unless it is Connect JSON.
func (a hostile) framed() []byte {
	if a.json {
		return a.msg
	}
	body, flag := a.msg, byte(0)
	if a.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(a.msg)
		zw.Close()
		body, flag = b.Bytes(), 1
	}
	n := len(body)
	if a.declare > 0 {
		n = a.declare
	}
	return append(binary.BigEndian.AppendUint32([]byte{flag}, uint32(n)), body...)
}

// request posts body (framed) with the protocol's headers.
func (a hostile) request(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, inferPath, bytes.NewReader(body))
	if a.json {
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	r.ProtoMajor, r.ProtoMinor, r.Proto = 2, 0, "HTTP/2.0"
	r.Header.Set("Content-Type", "application/grpc")
	if a.gzip {
		r.Header.Set("Grpc-Encoding", "gzip")
	}
	return r
}

// size is what the budget is reckoned on: the message, inflated.
func (a hostile) size() int { return len(a.msg) }

// hostileHandler serves model "m" with grpcapi's defaults and a model
// that answers one FP32 element whatever it gets, so that what a request
// costs is what decoding it costs.
func hostileHandler(t interface{ Fatal(...any) }) http.Handler {
	one, _ := serving.NewTensor("y", []int64{1}, []float32{1})
	rest := httpapi.New()
	err := rest.Handle("m", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		return &serving.Response{Outputs: []serving.Tensor{one}}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return grpcapi.New(rest, grpcapi.WithMaxElements(1<<22))
}

// wire helpers: a message is built from fields appended by hand, so that
// it can say what proto.Marshal never would (empty submessages by the
// million, unpacked scalars, lying shapes).

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// repeat appends field(i) until b reaches size bytes.
func repeat(b []byte, size int, field func(b []byte, i int) []byte) []byte {
	for i := 0; len(b) < size; i++ {
		b = field(b, i)
	}
	return b
}

func input(name, dt string, shape []int64, contents []byte) []byte {
	var in []byte
	in = bytesField(in, 1, []byte(name))
	in = bytesField(in, 2, []byte(dt))
	var packed []byte
	for _, d := range shape {
		packed = protowire.AppendVarint(packed, uint64(d))
	}
	in = bytesField(in, 3, packed)
	if contents != nil {
		in = bytesField(in, 5, contents)
	}
	return in
}

func model(b []byte) []byte { return bytesField(b, 1, []byte("m")) }

// packedZeros is n elements of 0 in packed field num of the contents:
// fixed-size for FP32 (6) and FP64 (7), varints else.
func packedZeros(num protowire.Number, n int) []byte {
	size := 1
	switch num {
	case 6:
		size = 4
	case 7:
		size = 8
	}
	return bytesField(nil, num, make([]byte, n*size))
}

var contentsField = map[serving.DataType]protowire.Number{
	serving.Bool: 1, serving.Int8: 2, serving.Int16: 2, serving.Int32: 2, serving.Int64: 3,
	serving.Uint8: 4, serving.Uint16: 4, serving.Uint32: 4, serving.Uint64: 5, serving.FP32: 6, serving.FP64: 7, serving.Bytes: 8,
}

func hostileRequests(size int) []hostile {
	var out []hostile
	add := func(transport, name string, msg []byte) {
		out = append(out, hostile{name: name, transport: transport, msg: msg})
	}
	const typed, raw = "gRPC typed", "gRPC raw"

	// Row 6: a message over the limit, and a gzip bomb.
	big := repeat(model(nil), 16<<20, func(b []byte, _ int) []byte { return bytesField(b, 5, nil) })
	out = append(out, hostile{name: "row6 16 MB message of empty inputs", transport: typed, msg: big})
	out = append(out, hostile{name: "row6 16 MB declared, 1 KB sent", transport: typed, msg: big[:1024], declare: 16 << 20})
	bomb := make([]byte, 64<<20) // inflates from about 64 KiB
	out = append(out, hostile{name: "row6 gzip bomb, 64 MiB inflated", transport: typed, msg: bomb, gzip: true})
	out = append(out, hostile{name: "gzip, empty inputs", transport: typed, msg: repeat(model(nil), size, func(b []byte, _ int) []byte { return bytesField(b, 5, nil) }), gzip: true})

	// Rows 3 and 4: empty inputs, past the cap and under it.
	add(typed, "row3 empty inputs", repeat(model(nil), size, func(b []byte, _ int) []byte { return bytesField(b, 5, nil) }))
	add(typed, "row3 1000 empty inputs", repeat(model(nil), 2000, func(b []byte, _ int) []byte { return bytesField(b, 5, nil) }))
	add(typed, "row4 1000 valid empty inputs", repeat(model(nil), 16000, func(b []byte, i int) []byte {
		return bytesField(b, 5, input("i"+strconv.Itoa(i), "FP32", []int64{0}, nil))
	}))
	add(typed, "row4 1000 inputs, one name", repeat(model(nil), 16000, func(b []byte, _ int) []byte {
		return bytesField(b, 5, input("i", "FP32", []int64{0}, nil))
	}))
	add(typed, "empty outputs", repeat(model(nil), size, func(b []byte, _ int) []byte { return bytesField(b, 6, nil) }))
	add(typed, "empty parameters", repeat(model(nil), size, func(b []byte, _ int) []byte { return bytesField(b, 4, nil) }))
	add(typed, "parameters under the cap", repeat(model(nil), 2000, func(b []byte, i int) []byte {
		return bytesField(b, 4, bytesField(bytesField(nil, 1, []byte(strconv.Itoa(i))), 2, protowire.AppendVarint([]byte{1 << 3}, 1)))
	}))
	add(typed, "shape of many dims", bytesField(model(nil), 5, bytesField(nil, 3, bytes.Repeat([]byte{1}, size))))
	add(typed, "empty contents, many times", bytesField(model(nil), 5, repeat(input("x", "FP32", []int64{1}, nil), size, func(b []byte, _ int) []byte { return bytesField(b, 5, nil) })))

	// Row 1b and 2: shapes that lie.
	for _, dt := range serving.DataTypes {
		f, ok := contentsField[dt]
		if !ok {
			continue
		}
		add(typed, "lying shape "+dt.String(), bytesField(model(nil), 5, input("x", dt.String(), []int64{4194304}, packedZeros(f, 1))))
		add(raw, "lying shape "+dt.String(), bytesField(bytesField(model(nil), 5, input("x", dt.String(), []int64{4194304}, nil)), 7, nil))
	}
	add(raw, "row2 BYTES [4194304], no bytes", bytesField(bytesField(model(nil), 5, input("x", "BYTES", []int64{4194304}, nil)), 7, nil))

	// Tiny elements of every datatype, packed and not.
	for _, dt := range serving.DataTypes {
		f, ok := contentsField[dt]
		if !ok {
			continue
		}
		var c []byte
		var n int
		switch f {
		case 8:
			for len(c) < size {
				c = bytesField(c, 8, nil)
				n++
			}
		case 6, 7:
			n = size / (4 * int(f-5))
			c = packedZeros(f, n)
		default:
			n = size
			c = packedZeros(f, n)
		}
		add(typed, "tiny elements "+dt.String(), bytesField(model(nil), 5, input("x", dt.String(), []int64{int64(n)}, c)))
		if f <= 5 { // unpacked varints: a tag and a zero each
			n, c = size/2, nil
			for range n {
				c = protowire.AppendVarint(protowire.AppendTag(c, f, protowire.VarintType), 0)
			}
			add(typed, "tiny elements unpacked "+dt.String(), bytesField(model(nil), 5, input("x", dt.String(), []int64{int64(n)}, c)))
		}
	}
	// Raw: empty BYTES elements, many raw entries.
	n := size / 4
	add(raw, "BYTES empty elements", bytesField(bytesField(model(nil), 5, input("x", "BYTES", []int64{int64(n)}, nil)), 7, make([]byte, 4*n)))
	add(raw, "FP32 zeros", bytesField(bytesField(model(nil), 5, input("x", "FP32", []int64{int64(n)}, nil)), 7, make([]byte, 4*n)))
	add(raw, "empty raw contents", repeat(bytesField(model(nil), 5, input("x", "FP32", []int64{0}, nil)), size, func(b []byte, _ int) []byte { return bytesField(b, 7, nil) }))

	// Connect JSON: the same shapes in proto3 JSON.
	js := func(name, body string) {
		out = append(out, hostile{name: name, transport: "Connect JSON", msg: []byte(body), json: true})
	}
	list := func(elem string, size int) (string, int) {
		n := max(1, size/(len(elem)+1))
		return strings.Repeat(elem+",", n)[:n*(len(elem)+1)-1], n
	}
	js("row3 inputs [{},...]", `{"modelName":"m","inputs":[`+strings.Repeat("{},", size/3)+`{}]}`)
	js("outputs [{},...]", `{"modelName":"m","outputs":[`+strings.Repeat("{},", size/3)+`{}]}`)
	js("parameters", `{"modelName":"m","parameters":{`+func() string {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + strconv.Itoa(i) + `":{}`)
		}
		return b.String()
	}()+`}}`)
	js("lying shape", `{"modelName":"m","inputs":[{"name":"x","datatype":"FP32","shape":[4194304],"contents":{"fp32Contents":[0]}}]}`)
	for _, c := range []struct{ dt, field, elem string }{
		{"BYTES", "bytesContents", `""`}, {"INT64", "int64Contents", "0"}, {"UINT64", "uint64Contents", "0"}, {"FP64", "fp64Contents", "0"},
		{"FP32", "fp32Contents", "0"}, {"INT32", "intContents", "0"}, {"BOOL", "boolContents", "true"}, {"UINT32", "uintContents", "0"},
	} {
		data, n := list(c.elem, size)
		js("tiny elements "+c.dt, `{"modelName":"m","inputs":[{"name":"x","datatype":"`+c.dt+`","shape":[`+strconv.Itoa(n)+`],"contents":{"`+c.field+`":[`+data+`]}}]}`)
	}
	js("unknown keys", `{"modelName":"m","x":[`+strings.Repeat(`{"a":[1,"b",null]},`, size/20)+`0]}`)
	js("deep unknown", `{"modelName":"m","x":`+strings.Repeat("[", 9000)+strings.Repeat("]", 9000)+`}`)
	js("not JSON", strings.Repeat("[", size))
	return out
}
