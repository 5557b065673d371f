package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
)

// Every ai.onnx.ml fixture (models in the shapes skl2onnx and onnxmltools
// export) answers over REST exactly what ONNX Runtime answers when run
// directly: in JSON and in Triton's binary extension, string labels and
// ZipMap outputs included. JSON numbers are written shortest-exact, so a
// float read back is the float sent.
func TestTabularREST(t *testing.T) {
	orttest.Require(t)
	for _, c := range tabulartest.Servable(t) {
		t.Run(c.Name, func(t *testing.T) {
			m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			h := httpapi.New()
			if err := h.Handle(c.Name, m); err != nil {
				t.Fatal(err)
			}
			for _, binary := range []bool{false, true} {
				w := call(t, h, http.MethodPost, "/v2/models/"+c.Name+"/infer", v2JSON(t, c.Inputs, binary))
				if w.Code != http.StatusOK {
					t.Fatalf("binary %v: %d %s", binary, w.Code, w.Body)
				}
				outs := decodeV2Response(t, w.Body.Bytes(), w.Header().Get(httpapi.HeaderContentLength))
				tabulartest.CheckResponse(t, c.Path, c.Inputs, m.Metadata(), outs)
			}
		})
	}
}

// v2JSON writes a V2 request of ts in JSON (NaN as the string "NaN").
func v2JSON(t *testing.T, ts []serving.Tensor, binaryOut bool) string {
	t.Helper()
	type input struct {
		Name     string  `json:"name"`
		DataType string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
		Data     []any   `json:"data"`
	}
	var body struct {
		Parameters map[string]any `json:"parameters,omitempty"`
		Inputs     []input        `json:"inputs"`
	}
	if binaryOut {
		body.Parameters = map[string]any{"binary_data_output": true}
	}
	for _, x := range ts {
		in := input{Name: x.Name, DataType: x.DataType.String(), Shape: x.Shape}
		switch d := x.Data().(type) {
		case []float32:
			for _, v := range d {
				if math.IsNaN(float64(v)) {
					in.Data = append(in.Data, "NaN")
				} else {
					in.Data = append(in.Data, json.Number(strconv.FormatFloat(float64(v), 'g', -1, 32)))
				}
			}
		case []int64:
			for _, v := range d {
				in.Data = append(in.Data, v)
			}
		case [][]byte:
			for _, v := range d {
				in.Data = append(in.Data, string(v))
			}
		default:
			t.Fatalf("input %s: %v", x.Name, x.DataType)
		}
		body.Inputs = append(body.Inputs, in)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decodeV2Response reads a V2 answer, JSON or with binary outputs after
// the JSON (jsonLen from Inference-Header-Content-Length), into tensors.
func decodeV2Response(t *testing.T, body []byte, jsonLen string) []serving.Tensor {
	t.Helper()
	raw := []byte(nil)
	if jsonLen != "" {
		n, err := strconv.Atoi(jsonLen)
		if err != nil || n > len(body) {
			t.Fatalf("Inference-Header-Content-Length %q for %d bytes", jsonLen, len(body))
		}
		body, raw = body[:n], body[n:]
	}
	var resp struct {
		Outputs []struct {
			Name       string            `json:"name"`
			DataType   string            `json:"datatype"`
			Shape      []int64           `json:"shape"`
			Data       []json.RawMessage `json:"data"`
			Parameters map[string]any    `json:"parameters"`
		} `json:"outputs"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var outs []serving.Tensor
	for _, o := range resp.Outputs {
		dt, err := serving.ParseDataType(o.DataType)
		if err != nil {
			t.Fatal(err)
		}
		var x serving.Tensor
		if size, ok := o.Parameters["binary_data_size"]; ok {
			n, _ := strconv.Atoi(fmt.Sprint(size))
			x, err = serving.FromRaw(o.Name, dt, o.Shape, raw[:n])
			raw = raw[n:]
		} else {
			x, err = fromJSON(o.Name, dt, o.Shape, o.Data)
		}
		if err != nil {
			t.Fatalf("output %s: %v", o.Name, err)
		}
		outs = append(outs, x)
	}
	return outs
}

// fromJSON reads a JSON data array exactly: each element as the datatype
// it claims, parsed from its text.
func fromJSON(name string, dt serving.DataType, shape []int64, data []json.RawMessage) (serving.Tensor, error) {
	x, err := serving.Make(name, dt, shape)
	if err != nil {
		return x, err
	}
	for i, e := range data {
		s := string(e)
		var v any
		switch dt {
		case serving.Bytes:
			var str string
			err = json.Unmarshal(e, &str)
			v = []byte(str)
		case serving.Bool:
			v, err = strconv.ParseBool(s)
		case serving.FP32, serving.FP16, serving.BF16:
			var f float64
			f, err = strconv.ParseFloat(s, 32)
			v = float32(f)
		case serving.FP64:
			v, err = strconv.ParseFloat(s, 64)
		case serving.Uint8, serving.Uint16, serving.Uint32, serving.Uint64:
			v, err = strconv.ParseUint(s, 10, 64)
		default:
			v, err = strconv.ParseInt(s, 10, 64)
		}
		if err != nil {
			return x, fmt.Errorf("element %d %s: %w", i, s, err)
		}
		set(x, i, v)
	}
	return x, nil
}

func set(x serving.Tensor, i int, v any) {
	switch d := x.Data().(type) {
	case [][]byte:
		d[i] = v.([]byte)
	case []bool:
		d[i] = v.(bool)
	case []float32:
		d[i] = v.(float32)
	case []float64:
		d[i] = v.(float64)
	case []uint16:
		switch x.DataType {
		case serving.FP16:
			d[i] = serving.Float32ToFP16(v.(float32))
		case serving.BF16:
			d[i] = serving.Float32ToBF16(v.(float32))
		default:
			d[i] = uint16(v.(uint64))
		}
	case []uint8:
		d[i] = uint8(v.(uint64))
	case []uint32:
		d[i] = uint32(v.(uint64))
	case []uint64:
		d[i] = v.(uint64)
	case []int8:
		d[i] = int8(v.(int64))
	case []int16:
		d[i] = int16(v.(int64))
	case []int32:
		d[i] = int32(v.(int64))
	case []int64:
		d[i] = v.(int64)
	}
}

// The model metadata carries each output's class labels as a parameter,
// and lists the outputs the model has but cannot serve, with why.
func TestTabularMetadataREST(t *testing.T) {
	orttest.Require(t)
	h := httpapi.New()
	for _, name := range []string{"logreg_str_zipmap", "unservable_outputs"} {
		m, err := onnx.Load(tabulartest.Find(t, name).Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := h.Handle(name, m); err != nil {
			t.Fatal(err)
		}
	}
	w := call(t, h, http.MethodGet, "/v2/models/logreg_str_zipmap", "")
	want := `"outputs":[{"name":"output_label","datatype":"BYTES","shape":[-1]},` +
		`{"name":"output_probability","datatype":"FP32","shape":[-1,3],"parameters":{"labels":["bronze","gold","silver"]}}]`
	if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(want)) {
		t.Errorf("metadata %d %s\nwant %s", w.Code, w.Body, want)
	}
	w = call(t, h, http.MethodGet, "/v2/models/unservable_outputs", "")
	var md struct {
		Outputs    []struct{ Name string } `json:"outputs"`
		Parameters struct {
			Unserved []struct{ Name, Reason string } `json:"unserved_outputs"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Outputs) != 1 || md.Outputs[0].Name != "y" || len(md.Parameters.Unserved) != 2 ||
		md.Parameters.Unserved[0].Name != "parts" || !strings.Contains(md.Parameters.Unserved[0].Reason, "seq(tensor(float))") {
		t.Errorf("metadata %s", w.Body)
	}
	body := `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"outputs":[{"name":"maybe"}]}`
	w = call(t, h, http.MethodPost, "/v2/models/unservable_outputs/infer", body)
	if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "optional(tensor(float))") {
		t.Errorf("asking for an unserved output: %d %s", w.Code, w.Body)
	}
}

// Triton's classification extension over REST: each labelled output of the
// fixtures (classifier probabilities, ZipMap outputs, XGBoost's tensor),
// and a regressor's unlabelled one, asked with "classification": k,
// answers the top k per row as "value:index[:label]" BYTES, in JSON and
// binary, as Triton formats them, for k below and above the class count.
func TestTabularClassificationREST(t *testing.T) {
	orttest.Require(t)
	for _, c := range tabulartest.Servable(t) {
		m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		h := httpapi.New()
		if err := h.Handle(c.Name, m); err != nil {
			t.Fatal(err)
		}
		for _, spec := range m.Metadata().Outputs {
			if len(spec.Labels) == 0 && c.Name != "rf_reg" {
				continue
			}
			raw := tabulartest.Raw(t, c.Path, c.Inputs, []serving.TensorSpec{spec})[spec.Name]
			for _, k := range []int{1, 2, 10} {
				for _, binary := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/k=%d/binary=%v", c.Name, spec.Name, k, binary), func(t *testing.T) {
						body := strings.TrimSuffix(v2JSON(t, c.Inputs, false), "}") +
							fmt.Sprintf(`,"outputs":[{"name":%q,"parameters":{"classification":%d,"binary_data":%v}}]}`, spec.Name, k, binary)
						w := call(t, h, http.MethodPost, "/v2/models/"+c.Name+"/infer", body)
						if w.Code != http.StatusOK {
							t.Fatalf("%d %s", w.Code, w.Body)
						}
						outs := decodeV2Response(t, w.Body.Bytes(), w.Header().Get(httpapi.HeaderContentLength))
						want := tabulartest.TopK(spec, raw, k)
						got, _ := outs[0].Strings()
						n := min(k, int(spec.Shape[1]))
						if outs[0].DataType != serving.Bytes || !slices.Equal(outs[0].Shape, []int64{c.Rows(), int64(n)}) || !slices.Equal(got, want) {
							t.Errorf("got %v%v %q\nwant [%d %d] %q", outs[0].DataType, outs[0].Shape, got, c.Rows(), n, want)
						}
					})
				}
			}
		}
	}
}

// What the classification extension refuses, with 400 and why.
func TestClassificationRefusedREST(t *testing.T) {
	orttest.Require(t)
	c := tabulartest.Find(t, "logreg_str_zipmap")
	m, err := onnx.Load(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := httpapi.New()
	if err := h.Handle(c.Name, m); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{
		`{"name":"output_label","parameters":{"classification":1}}`,       // strings
		`{"name":"output_probability","parameters":{"classification":0}}`, // k < 1
		`{"name":"output_probability","parameters":{"classification":"2"}}`,
	} {
		body := strings.TrimSuffix(v2JSON(t, c.Inputs, false), "}") + `,"outputs":[` + o + `]}`
		w := call(t, h, http.MethodPost, "/v2/models/"+c.Name+"/infer", body)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "classification") {
			t.Errorf("%s: %d %s", o, w.Code, w.Body)
		}
	}
}

// KServe V1 with a per-column model: instances given as objects, one value
// per column ({"age": 42, "purpose": "car", ...}), and the columnar
// {"inputs": {"age": [...], ...}} form map to the model's [N, 1] inputs by
// name; the predictions equal ONNX Runtime's, row by row.
func TestTabularV1Objects(t *testing.T) {
	orttest.Require(t)
	c := tabulartest.Find(t, "loan_columns")
	m, err := onnx.Load(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := httpapi.New()
	if err := h.Handle(c.Name, m); err != nil {
		t.Fatal(err)
	}
	md := m.Metadata()
	raw := tabulartest.Raw(t, c.Path, c.Inputs, md.Outputs)
	cols := map[string][]any{}
	for _, in := range c.Inputs {
		for i := range in.Len() {
			var v any
			switch d := in.Data().(type) {
			case []float32:
				v = json.Number(strconv.FormatFloat(float64(d[i]), 'g', -1, 32))
				if math.IsNaN(float64(d[i])) {
					v = "NaN"
				}
			case []int64:
				v = d[i]
			case [][]byte:
				v = string(d[i])
			}
			cols[in.Name] = append(cols[in.Name], v)
		}
	}
	instances := make([]map[string]any, c.Rows())
	for name, vs := range cols {
		for r, v := range vs {
			if instances[r] == nil {
				instances[r] = map[string]any{}
			}
			instances[r][name] = v
		}
	}
	rowsBody, _ := json.Marshal(map[string]any{"instances": instances})
	colsBody, _ := json.Marshal(map[string]any{"inputs": cols})
	label, _ := raw["output_label"].Tensor.Strings()
	for _, body := range [][]byte{rowsBody, colsBody} {
		w := call(t, h, http.MethodPost, "/v1/models/"+c.Name+":predict", string(body))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
		var got struct {
			Predictions []struct {
				Label string    `json:"output_label"`
				Probs []float32 `json:"output_probability"`
			} `json:"predictions"`
			Outputs struct {
				Label []string    `json:"output_label"`
				Probs [][]float32 `json:"output_probability"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		var labels []string
		var probs []float32
		for _, p := range got.Predictions {
			labels, probs = append(labels, p.Label), append(probs, p.Probs...)
		}
		if got.Predictions == nil {
			labels = got.Outputs.Label
			for _, p := range got.Outputs.Probs {
				probs = append(probs, p...)
			}
		}
		pt, _ := serving.NewTensor("output_probability", []int64{c.Rows(), 2}, probs)
		if !slices.Equal(labels, label) {
			t.Errorf("labels %q, want %q", labels, label)
		}
		if err := tabulartest.Check(md.Outputs[1], pt, raw["output_probability"]); err != nil {
			t.Errorf("%s: %v", body[:20], err)
		}
	}
}
