package oipjson_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// A model's metadata as servekit's REST transport writes it (labels,
// device, unserved outputs in "parameters") and as Triton writes it.
func TestDecodeModelMetadata(t *testing.T) {
	servekit := `{"name":"iris","versions":["1","2"],"platform":"onnxruntime_onnx",
		"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],
		"outputs":[{"name":"label","datatype":"INT64","shape":[-1]},
			{"name":"probabilities","datatype":"FP32","shape":[-1,3],"parameters":{"labels":["setosa","versicolor","virginica"]}}],
		"parameters":{"device":"cuda:0","unserved_outputs":[{"name":"seq","reason":"a sequence of maps"}]}}`
	md, versions, err := oipjson.DecodeModelMetadata([]byte(servekit), oip.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := serving.Metadata{Name: "iris", Platform: "onnxruntime_onnx", Device: "cuda:0",
		Inputs: []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, 4}}},
		Outputs: []serving.TensorSpec{{Name: "label", DataType: serving.Int64, Shape: []int64{-1}},
			{Name: "probabilities", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"setosa", "versicolor", "virginica"}}},
		Unserved: []serving.UnservedOutput{{Name: "seq", Reason: "a sequence of maps"}}}
	if !reflect.DeepEqual(md, want) || !reflect.DeepEqual(versions, []string{"1", "2"}) {
		t.Errorf("got %+v %q\nwant %+v", md, versions, want)
	}

	// Triton: no parameters, members it adds that the protocol lacks, a
	// scalar shape.
	triton := `{"name":"simple","versions":["1"],"platform":"tensorflow_graphdef","inputs":[{"name":"INPUT0","datatype":"INT32","shape":[-1,16]}],"outputs":[{"name":"OUTPUT0","datatype":"BYTES","shape":[]}],"extra":{"x":[1,{"y":null}]}}`
	md, _, err = oipjson.DecodeModelMetadata([]byte(triton), oip.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "simple" || len(md.Inputs) != 1 || md.Inputs[0].DataType != serving.Int32 || md.Outputs[0].DataType != serving.Bytes || len(md.Outputs[0].Shape) != 0 {
		t.Errorf("Triton's metadata: %+v", md)
	}

	for body, want := range map[string]string{
		``:                                 "empty body",
		`[]`:                               "not a JSON object",
		`{"name":1}`:                       `"name" must be a string`,
		`{"inputs":{}}`:                    `"inputs" must be a list`,
		`{"inputs":[null]}`:                "must be objects",
		`{"inputs":[{"datatype":"FP33"}]}`: `unknown datatype "FP33"`,
		`{"inputs":[{"datatype":"FP32","shape":[1.5]}]}`: "integers of -1 or more",
		`{"inputs":[{"datatype":"FP32","shape":[-2]}]}`:  "integers of -1 or more",
		`{"inputs":[{"datatype":"FP32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}`: "more than the limit",
		`{"name":"a"} x`:  "malformed JSON",
		`{"name":"\xff"}`: "malformed JSON",
	} {
		_, _, err := oipjson.DecodeModelMetadata([]byte(body), oip.Limits{})
		if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want InvalidArgument with %q", body, err, want)
		}
	}
	if _, _, err := oipjson.DecodeModelMetadata([]byte(`{"inputs":[{},{}]}`), oip.Limits{Inputs: 1}); err == nil {
		t.Error("2 inputs past a limit of 1: no error")
	}
}

func TestDecodeServerMetadata(t *testing.T) {
	m, err := oipjson.DecodeServerMetadata([]byte(`{"name":"triton","version":"2.50.0","extensions":["classification","binary_tensor_data"]}`))
	if err != nil || m.Name != "triton" || m.Version != "2.50.0" || !reflect.DeepEqual(m.Extensions, []string{"classification", "binary_tensor_data"}) {
		t.Errorf("%+v %v", m, err)
	}
	if _, err := oipjson.DecodeServerMetadata([]byte(`{"extensions":"x"}`)); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("extensions as a string: %v", err)
	}
}

// TestDecodeMetadataBudget: metadata of empty tensors, labels, versions
// and extensions, the most memory per byte a server can ask of a client,
// keeps serving.DecodeBudget; the tensors past the limit are refused.
func TestDecodeMetadataBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed; make test runs this without it")
	}
	const size = 256 << 10
	list := func(elem string) string {
		return strings.Repeat(elem+",", size/(len(elem)+1)) + elem
	}
	for _, c := range []struct {
		name, body string
		refused    bool
	}{
		{"empty inputs", `{"inputs":[` + list("{}") + `]}`, true},
		{"1024 empty inputs", `{"inputs":[` + strings.Repeat("{},", 1023) + `{}]}`, true}, // no datatype
		{"1024 inputs", `{"inputs":[` + strings.Repeat(`{"datatype":"FP32"},`, 1023) + `{"datatype":"FP32"}]}`, false},
		{"empty versions", `{"versions":[` + list(`""`) + `]}`, false},
		{"empty labels", `{"outputs":[{"datatype":"FP32","parameters":{"labels":[` + list(`""`) + `]}}]}`, false},
		{"empty unserved", `{"parameters":{"unserved_outputs":[` + list("{}") + `]}}`, true},
		{"empty extensions", `{"extensions":[` + list(`""`) + `]}`, false},
	} {
		var err error
		body := []byte(c.body)
		used := alloctest.Bytes(2, func() {
			if strings.HasPrefix(c.body, `{"extensions"`) {
				_, err = oipjson.DecodeServerMetadata(body)
			} else {
				_, _, err = oipjson.DecodeModelMetadata(body, oip.Limits{})
			}
		})
		n := int64(len(c.body))
		t.Logf("%-18s %7d B -> %8d B (%5.2f x) %v", c.name, n, used, float64(used)/float64(n), err)
		if budget := serving.DecodeBudget(n); int64(used) > budget {
			t.Errorf("%s: allocated %d bytes, over the budget of %d", c.name, used, budget)
		}
		if (err != nil) != c.refused {
			t.Errorf("%s: error %v, want refused %v", c.name, err, c.refused)
		}
	}
}

// FuzzDecodeModelMetadata: never a panic, the budget kept, and what the
// decoder accepts encoding/json reads the same.
func FuzzDecodeModelMetadata(f *testing.F) {
	f.Add([]byte(`{"name":"iris","versions":["1"],"platform":"p","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"INT64","shape":[-1],"parameters":{"labels":["a"]}}],"parameters":{"device":"cpu","unserved_outputs":[{"name":"s","reason":"r"}]}}`))
	f.Add([]byte(`{"Name":"a\u00e9","inputs":null,"outputs":[{"datatype":"BYTES","shape":null,"parameters":null}],"parameters":{"x":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var md serving.Metadata
		var versions []string
		var err error
		used := alloctest.Once(func() { md, versions, err = oipjson.DecodeModelMetadata(body, oip.Limits{}) })
		if budget := serving.DecodeBudget(int64(len(body))); !alloctest.Race && int64(used) > budget {
			t.Fatalf("%q: allocated %d bytes, over the budget of %d", body, used, budget)
		}
		if err != nil {
			if serving.CodeOf(err) != serving.InvalidArgument {
				t.Fatalf("%q: error %v, want InvalidArgument", body, err)
			}
			return
		}
		type spec struct {
			Name, Datatype string
			Shape          []int64
			Parameters     struct{ Labels []string }
		}
		var std struct {
			Name, Platform  string
			Versions        []string
			Inputs, Outputs []spec
			Parameters      struct {
				Device          string
				UnservedOutputs []struct{ Name, Reason string } `json:"unserved_outputs"`
			}
		}
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("%q: accepted, but encoding/json says %v", body, err)
		}
		conv := func(in []spec) []serving.TensorSpec {
			var out []serving.TensorSpec
			for _, s := range in {
				dt, _ := serving.ParseDataType(s.Datatype)
				out = append(out, serving.TensorSpec{Name: s.Name, DataType: dt, Shape: s.Shape, Labels: s.Parameters.Labels})
			}
			return out
		}
		want := serving.Metadata{Name: std.Name, Platform: std.Platform, Device: std.Parameters.Device,
			Inputs: conv(std.Inputs), Outputs: conv(std.Outputs)}
		for _, u := range std.Parameters.UnservedOutputs {
			want.Unserved = append(want.Unserved, serving.UnservedOutput{Name: u.Name, Reason: u.Reason})
		}
		if !equalish(md, want) || len(versions) != len(std.Versions) {
			t.Fatalf("%q:\n got %+v %q\nwant %+v %q", body, md, versions, want, std.Versions)
		}
	})
}

// equalish is reflect.DeepEqual with empty and nil slices alike.
func equalish(a, b serving.Metadata) bool {
	norm := func(m serving.Metadata) string {
		j, _ := json.Marshal(m)
		return strings.NewReplacer("null", "[]").Replace(string(j))
	}
	return norm(a) == norm(b)
}
