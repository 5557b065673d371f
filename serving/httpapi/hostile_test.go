package httpapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// The hostile requests of issue 18 (rows 1-6) and generated variants of
// them, for the cost-budget test and as fuzz seeds. Each is built to a
// target size, so that the constant part of the budget does not hide a
// ratio.

// hostile is one request: a route, a body, the binary extension's JSON
// length (-1 for none) and a Content-Length to declare (0: the body's).
type hostile struct {
	name     string
	path     string
	binary   bool // the binary tensor extension
	body     []byte
	jsonLen  int
	declared int64
}

func (a hostile) request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, a.path, bytes.NewReader(a.body))
	if a.jsonLen >= 0 {
		r.Header.Set(httpapi.HeaderContentLength, strconv.Itoa(a.jsonLen))
	}
	if a.declared > 0 {
		r.ContentLength = a.declared
	}
	return r
}

// Routes of hostileHandler: every decoder an HTTP client can reach.
const (
	pathV2        = "/v2/models/m/infer"
	pathV1        = "/v1/models/m:predict"
	pathSageMaker = "/invocations"
	pathVertex    = "/vx/predict"
	pathV1Typed   = "/v1/models/typed:predict" // a model with one input of each datatype
)

// hostileHandler serves the routes above with the limits of servekit
// serve's defaults. Its models answer one FP32 element whatever they get,
// so that what a request costs is what decoding it costs.
func hostileHandler(t interface{ Fatal(...any) }) *httpapi.Handler {
	h := httpapi.New(httpapi.WithMaxBodyBytes(16<<20), httpapi.WithMaxElements(1<<22),
		httpapi.SageMaker("m"), httpapi.WithPredictRoute(pathVertex, "m"))
	answer := sink().Predict
	var typed serving.Metadata
	for _, dt := range serving.DataTypes {
		typed.Inputs = append(typed.Inputs, serving.TensorSpec{Name: strings.ToLower(dt.String()), DataType: dt, Shape: []int64{-1, -1}})
	}
	if err := h.Handle("m", servingtest.Func(answer)); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle("typed", servingtest.Func(answer).WithMetadata(typed)); err != nil {
		t.Fatal(err)
	}
	return h
}

// sink answers one FP32 element, "y", whatever it gets.
func sink() *servingtest.Fake {
	one, _ := serving.NewTensor("y", []int64{1}, []float32{1})
	return servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		return &serving.Response{Outputs: []serving.Tensor{one}}, nil
	})
}

// fill writes head, then elem(i) joined by sep until the body reaches size
// bytes (at least one element), then tail.
func fill(head string, elem func(i int) string, sep, tail string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(head)
	for i := 0; i == 0 || b.Len()+len(tail) < size; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(elem(i))
	}
	b.WriteString(tail)
	return b.Bytes()
}

func same(s string) func(int) string { return func(int) string { return s } }

// elems is elem repeated n times, comma-separated, n as many as fit in
// size bytes (at least one).
func elems(elem string, size int) (string, int) {
	n := max(1, (size+1)/(len(elem)+1))
	return strings.Repeat(elem+",", n)[:n*(len(elem)+1)-1], n
}

// tiny is the shortest JSON element of dt.
func tiny(dt serving.DataType) string {
	switch dt {
	case serving.Bytes:
		return `""`
	case serving.Bool:
		return "true"
	}
	return "0"
}

func v2(inputs string) string { return `{"inputs":[` + inputs + `]}` }

// hostileRequests builds the table at about size bytes a body.
func hostileRequests(size int) []hostile {
	var out []hostile
	add := func(name, path string, body []byte) {
		out = append(out, hostile{name: name, path: path, body: body, jsonLen: -1})
	}
	v1Paths := []string{pathV1, pathSageMaker, pathVertex}

	// Row 1: V1 rows of one element; every V1 route.
	bytesData, n := elems(`""`, size)
	for _, p := range v1Paths {
		add("row1 instances [[0],...] 415B "+p, p, fill(`{"instances":[`, same("[0]"), ",", "]}", 415))
		add("row1 instances [[0],...] "+p, p, fill(`{"instances":[`, same("[0]"), ",", "]}", size))
		add("instances of empty strings "+p, p, fill(`{"instances":[`, same(`""`), ",", "]}", size))
		add("V2 body, empty strings "+p, p, []byte(`{"inputs":[{"name":"x","datatype":"BYTES","shape":[`+strconv.Itoa(n)+`],"data":[`+bytesData+`]}]}`))
	}
	add("V1 instances [[],...]", pathV1, fill(`{"instances":[`, same("[]"), ",", "]}", size))
	add("V1 instances deep", pathV1, fill(`{"instances":[`, same(strings.Repeat("[", 31)+"0"+strings.Repeat("]", 31)), ",", "]}", size))
	add("V1 instances too deep", pathV1, []byte(`{"instances":[`+strings.Repeat("[", 9000)+strings.Repeat("]", 9000)+`]}`))
	add("V1 named instances", pathV1, fill(`{"instances":[`, same(`{"x":[0]}`), ",", "]}", size))
	add("V1 named instances, a long first row then none", pathV1,
		fill(`{"instances":[{"x":[`+strings.Repeat("0,", 2000)+`0]}`, same(`{"y":0}`), ",", "]}", size))
	add("V1 named instances, many names", pathV1, fill(`{"instances":[{`, func(i int) string { return `"n` + strconv.Itoa(i) + `":0` }, ",", "}]}", size))
	add("V1 named instances, one name repeated", pathV1, fill(`{"instances":[{`, same(`"x":0`), ",", "}]}", size))
	add("V1 inputs, many names", pathV1, fill(`{"inputs":{`, func(i int) string { return `"n` + strconv.Itoa(i) + `":0` }, ",", "}}", size))
	add("V1 inputs [0,...]", pathV1, fill(`{"inputs":[`, same("0"), ",", "]}", size))
	for _, dt := range serving.DataTypes {
		in := strings.ToLower(dt.String())
		add("V1 typed instances "+dt.String(), pathV1Typed, fill(`{"instances":[`, same(`{"`+in+`":[`+tiny(dt)+`]}`), ",", "]}", size))
		add("V1 typed inputs "+dt.String(), pathV1Typed, fill(`{"inputs":{"`+in+`":[[`, same(tiny(dt)), ",", "]]}}", size))
	}

	// Row 1b: shapes that claim 65536 elements and carry one.
	for _, dt := range serving.DataTypes {
		lie := func(i int) string {
			return `{"name":"i` + strconv.Itoa(i) + `","datatype":"` + dt.String() + `","shape":[65536],"data":[` + tiny(dt) + `]}`
		}
		add("row1b lying shapes "+dt.String(), pathV2, fill(`{"inputs":[`, lie, ",", "]}", size))
		add("row1b lying shapes, under the input cap "+dt.String(), pathV2, fill(`{"inputs":[`, lie, ",", "]}", min(size, 1000*len(lie(999)))))
		add("lying shape, data first "+dt.String(), pathV2, fill(`{"inputs":[`, func(i int) string {
			return `{"data":[` + tiny(dt) + `],"name":"i` + strconv.Itoa(i) + `","datatype":"` + dt.String() + `","shape":[4194304]}`
		}, ",", "]}", min(size, 60000)))
		// Many tiny elements, every datatype: valid, so the model runs.
		data, n := elems(tiny(dt), size)
		head := `{"inputs":[{"name":"x","datatype":"` + dt.String() + `","shape":[` + strconv.Itoa(n)
		add("tiny elements "+dt.String(), pathV2, []byte(head+`],"data":[`+data+"]}]}"))
		nested, rows := elems("[["+tiny(dt)+"]]", size)
		add("tiny elements, nested "+dt.String(), pathV2, []byte(head[:strings.LastIndexByte(head, '[')+1]+strconv.Itoa(rows)+`,1,1],"data":[`+nested+"]}]}"))
		// The datatype changes after the data: the data is read twice.
		add("datatype after data "+dt.String(), pathV2, []byte(`{"inputs":[{"name":"x","datatype":"BYTES","shape":[`+strconv.Itoa(n)+`],"data":[`+
			data+`],"datatype":"`+dt.String()+`"}]}`))
	}

	// Row 2: a BYTES shape of 4M with no bytes, over binary and JSON.
	hdr := `{"inputs":[{"name":"x","shape":[4194304],"datatype":"BYTES","parameters":{"binary_data_size":0}}]}`
	out = append(out, hostile{name: "row2 BYTES [4194304] binary_data_size 0", path: pathV2, body: []byte(hdr), jsonLen: len(hdr)})
	add("row2 BYTES [4194304] data []", pathV2, []byte(v2(`{"name":"x","shape":[4194304],"datatype":"BYTES","data":[]}`)))
	// Binary variants: lying lengths, empty BYTES elements, many inputs.
	for _, dt := range serving.DataTypes {
		hdr := v2(`{"name":"x","shape":[4194304],"datatype":"` + dt.String() + `","parameters":{"binary_data_size":` + strconv.Itoa(size/2) + `}}`)
		out = append(out, hostile{name: "binary lying shape " + dt.String(), path: pathV2, body: append([]byte(hdr), make([]byte, size/2)...), jsonLen: len(hdr)})
	}
	n = size / 4
	hdr = v2(`{"name":"x","shape":[` + strconv.Itoa(n) + `],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(4*n) + `}}`)
	out = append(out, hostile{name: "binary BYTES empty elements", path: pathV2, body: append([]byte(hdr), make([]byte, 4*n)...), jsonLen: len(hdr)})
	lens := binary.LittleEndian.AppendUint32(nil, 1<<30)
	hdr = v2(`{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":4}}`)
	out = append(out, hostile{name: "binary BYTES length 1 GiB", path: pathV2, body: append([]byte(hdr), lens...), jsonLen: len(hdr)})
	manyBin := fill(`{"inputs":[`, func(i int) string {
		return `{"name":"i` + strconv.Itoa(i) + `","shape":[0],"datatype":"FP32","parameters":{"binary_data_size":0}}`
	}, ",", "]}", size)
	out = append(out, hostile{name: "binary many empty inputs", path: pathV2, body: manyBin, jsonLen: len(manyBin)})

	// Row 3: empty inputs. Row 4: valid empty inputs, past and under the cap.
	add("row3 inputs [{},...]", pathV2, fill(`{"inputs":[`, same("{}"), ",", "]}", size))
	add("row3 inputs [{},...] 1000", pathV2, fill(`{"inputs":[`, same("{}"), ",", "]}", 3000))
	empty := func(i int) string {
		return `{"name":"i` + strconv.Itoa(i) + `","datatype":"FP32","shape":[0],"data":[]}`
	}
	add("row4 60000 empty inputs", pathV2, fill(`{"inputs":[`, empty, ",", "]}", 60000*len(empty(30000))))
	add("row4 1000 empty inputs", pathV2, fill(`{"inputs":[`, empty, ",", "]}", 1000*len(empty(999))))
	add("row4 1000 inputs, one name", pathV2, fill(`{"inputs":[`, same(empty(0)), ",", "]}", 1000*len(empty(0))))

	// Outputs, parameters, nesting, repeated keys, long strings.
	x := `{"name":"x","datatype":"FP32","shape":[1],"data":[0]}`
	add("outputs [{},...]", pathV2, fill(`{"inputs":[`+x+`],"outputs":[`, same("{}"), ",", "]}", size))
	add("outputs, 1000 names", pathV2, fill(`{"inputs":[`+x+`],"outputs":[`, func(i int) string { return `{"name":"o` + strconv.Itoa(i) + `"}` }, ",", "]}", 12000))
	add("outputs, one name 1000 times", pathV2, fill(`{"inputs":[`+x+`],"outputs":[`, same(`{"name":"y"}`), ",", "]}", 12000))
	add("parameters, many keys", pathV2, fill(`{"inputs":[`+x+`],"parameters":{`, func(i int) string { return `"p` + strconv.Itoa(i) + `":0` }, ",", "}}", size))
	add("parameters, many arrays", pathV2, fill(`{"inputs":[`+x+`],"parameters":{"p":[`, same("[]"), ",", "]}}", size))
	add("parameters, nested 9000 deep", pathV2, []byte(`{"inputs":[`+x+`],"parameters":{"p":`+strings.Repeat("[", 9000)+strings.Repeat("]", 9000)+`}}`))
	add("tensor parameters, many keys", pathV2, fill(`{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[0],"parameters":{`,
		func(i int) string { return `"p` + strconv.Itoa(i) + `":0` }, ",", "}}]}", size))
	add("data nested too deep", pathV2, []byte(v2(`{"name":"x","datatype":"FP32","shape":[1],"data":`+strings.Repeat("[", 9000)+strings.Repeat("]", 9000)+`}`)))
	add("shape of many dims", pathV2, fill(`{"inputs":[{"name":"x","datatype":"FP32","data":[0],"shape":[`, same("1"), ",", "]}]}", size))
	add("shape repeated", pathV2, fill(`{"inputs":[{"name":"x","datatype":"FP32","data":[0]`, same(`,"shape":[`+strings.Repeat("1,", 63)+`1]`), "", "}]}", size))
	add("inputs repeated", pathV2, fill(`{`, same(`"inputs":[{"shape":[`+strings.Repeat("1,", 63)+`1]}]`), ",", "}", size))
	add("data repeated", pathV2, fill(`{"inputs":[{"name":"x","datatype":"INT64","shape":[64]`, same(`,"data":[`+strings.Repeat("0,", 63)+`0]`), "", "}]}", size))
	add("long name", pathV2, []byte(v2(`{"name":"`+strings.Repeat("n", size)+`","datatype":"FP32","shape":[1],"data":[0]}`)))
	add("escaped BYTES", pathV2, []byte(v2(`{"name":"x","datatype":"BYTES","shape":[1],"data":["`+strings.Repeat(`\u00e9`, size/6)+`"]}`)))
	add("unknown keys", pathV2, fill(`{"inputs":[`+x+`],"x":[`, same(`{"a":[1,"b",null]}`), ",", "]}", size))
	add("not JSON", pathV2, bytes.Repeat([]byte("["), size))

	// Row 5: a Content-Length of 16 MiB and no body.
	out = append(out, hostile{name: "row5 Content-Length 16 MiB, nothing sent", path: pathV2, jsonLen: -1, declared: 16 << 20})
	out = append(out, hostile{name: "row5 Content-Length 16 MiB, nothing sent, V1", path: pathV1, jsonLen: -1, declared: 16 << 20})
	for i := range out {
		out[i].binary = out[i].jsonLen >= 0
		if out[i].declared == 0 {
			out[i].declared = int64(len(out[i].body))
		}
	}
	return out
}

func (a hostile) String() string { return fmt.Sprintf("%s (%d bytes)", a.name, len(a.body)) }

// transport names the decoder a request reaches, for the ratios the README
// quotes.
func (a hostile) transport() string {
	switch {
	case a.binary:
		return "V2 binary"
	case a.path == pathV2:
		return "V2 JSON"
	case a.path == pathSageMaker:
		return "SageMaker"
	case a.path == pathVertex:
		return "Vertex"
	}
	return "V1"
}
