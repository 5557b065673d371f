package repository_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/modelconfigpb"
)

// fullConfig is the package doc's example; it must parse.
const fullConfig = `{
  "version_policy": {"latest": {"num_versions": 2}},
  "traffic": "manual",
  "default_model_filename": "model.onnx",
  "parameters": {"intra_op_threads": 2},
  "model_warmup": [
    {"name": "one-chunk", "count": 3, "inputs": {
      "input": {"data_type": "FP32", "dims": [1, 512], "random_data": true},
      "sr":    {"data_type": "INT64", "dims": [], "data": [16000]},
      "h":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true},
      "c":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true}
    }},
    {"name": "recorded", "request_file": "warmup/request.json"}
  ]
}`

func TestParseConfig(t *testing.T) {
	c, err := repository.ParseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatalf("the documented example: %v", err)
	}
	if c.VersionPolicy.String() != "latest 2" || c.Traffic != repository.TrafficManual || len(c.Warmup) != 2 || c.Warmup[0].Count != 3 {
		t.Errorf("decoded %+v", c)
	}
	var params struct {
		Threads int `json:"intra_op_threads"`
	}
	v := repository.Version{Model: "m", Parameters: c.Parameters}
	if err := v.DecodeParameters(&params); err != nil || params.Threads != 2 {
		t.Errorf("DecodeParameters: %+v, %v", params, err)
	}
	var typo struct {
		Threads int `json:"threads"`
	}
	if err := v.DecodeParameters(&typo); serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "intra_op_threads") {
		t.Errorf("DecodeParameters into a struct without the field: %v, want InvalidArgument naming it", err)
	}
	for _, empty := range []string{`{}`, ` {} `} {
		c, err := repository.ParseConfig([]byte(empty))
		if err != nil || c.VersionPolicy.String() != "latest 1" {
			t.Errorf("ParseConfig(%q) = %+v, %v; want the defaults", empty, c, err)
		}
	}
	for _, policy := range []string{`{"all": {}}`, `{"specific": {"versions": [3, 1]}}`} {
		if _, err := repository.ParseConfig([]byte(`{"version_policy": ` + policy + `}`)); err != nil {
			t.Errorf("policy %s: %v", policy, err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{``, "EOF"},
		{`[]`, "cannot unmarshal"},
		{`{"version_polcy": {}}`, `unknown field "version_polcy"`},
		{`{} {}`, "data after"},
		{`{"version_policy": {"latest": {"num_versions": 1}, "all": {}}}`, "policy_choice is already set"},
		{`{"version_policy": {"latest": {"num_versions": 0}}}`, "num_versions 0"},
		{`{"version_policy": {"latest": {"num_versions": "two"}}}`, `invalid value for uint32 field numVersions: "two"`},
		{`{"version_policy": {"specific": {"versions": []}}}`, "empty"},
		{`{"version_policy": {"specific": {"versions": [1, 1]}}}`, "listed twice"},
		{`{"version_policy": {"specific": {"versions": [0]}}}`, "positive"},
		{`{"traffic": "canary"}`, `traffic "canary"`},
		{`{"parameters": [1]}`, "parameters must be a JSON object"},
		{`{"default_model_filename": "a/b"}`, "default_model_filename"},
		{`{"model_warmup": [{}]}`, "set inputs or request_file"},
		{`{"model_warmup": [{"request_file": "r.json", "inputs": {"x": {"data_type": "FP32", "dims": [1], "zero_data": true}}}]}`, "not both"},
		{`{"model_warmup": [{"name": "w", "inputs": {"x": {"data_type": "FP33", "dims": [1], "zero_data": true}}}]}`, `model_warmup[0] "w": input "x": data_type "FP33"`},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "zero_data": true}}}]}`, "dims is required"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [-1, 4], "zero_data": true}}}]}`, "negative"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [10000, 10000], "zero_data": true}}}]}`, "at most"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [1]}}}]}`, "exactly one of zero_data"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [1], "zero_data": true, "random_data": true}}}]}`, "exactly one of zero_data"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [2], "data": [1]}}}]}`, "data"},
		{`{"model_warmup": [{"inputs": {"x": {"data_type": "INT64", "dims": [1], "data": ["a"]}}}]}`, "data"},
		{`{"model_warmup": [{"count": 1001, "request_file": "r.json"}]}`, "count 1001"},
		{`{"model_warmup": [{"count": -1, "request_file": "r.json"}]}`, "count -1"},
		{`{"model_warmup": [{"request_file": "../r.json"}]}`, "request_file"},
		{`{"model_warmup": [{"request_file": "r.json", "batch_size": 4}]}`, `batch_size 4: the model does not batch`},
		{`{"model_warmup": [{"request_file": "r.json", "bogus": 4}]}`, `unknown field "bogus"`},
	} {
		_, err := repository.ParseConfig([]byte(tc.config))
		if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s):\n  %v\n  want InvalidArgument containing %q", tc.config, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "repository: config.json: ") {
			t.Errorf("error %q does not name the file", err)
		}
	}
	if _, err := repository.ParseConfig([]byte(`{"parameters": {"pad": "` + strings.Repeat("x", 1<<20) + `"}}`)); err == nil {
		t.Error("a config over 1 MiB was accepted")
	}
}

// FuzzParseConfig: ParseConfig never panics, and what it accepts survives a
// round trip through Config.MarshalJSON unchanged (so Status and tools
// that rewrite configs see what the repository uses). CI runs the seeds
// in testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version_policy": {"specific": {"versions": [1, 2]}}, "traffic": "latest"}`))
	f.Add([]byte(`{"model_warmup": [{"inputs": {"s": {"data_type": "BYTES", "dims": [1], "data": ["\u00e9"]}}}]}`))
	f.Add([]byte(simpleJSON))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := repository.ParseConfig(b)
		if err != nil {
			if serving.CodeOf(err) != serving.InvalidArgument {
				t.Fatalf("error without InvalidArgument: %v", err)
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		again, err := repository.ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if diff := configDiff(c, again); diff != "" {
			t.Fatalf("round trip through %s changed the config: %s", out, diff)
		}
	})
}

// configDiff compares what the repository uses of two configs. A warm-up
// sample may move between Triton's and servekit's form in a round trip
// (Model.ModelWarmup holds only the first), so samples are compared as
// Warmup.
func configDiff(a, b *repository.Config) string {
	ma, mb := proto.Clone(a.Model).(*modelconfigpb.ModelConfig), proto.Clone(b.Model).(*modelconfigpb.ModelConfig)
	ma.ModelWarmup, mb.ModelWarmup = nil, nil
	if !proto.Equal(ma, mb) {
		return fmt.Sprintf("Model\n%v\n%v", ma, mb)
	}
	normalize(a)
	normalize(b)
	for _, d := range []struct {
		what string
		a, b any
	}{
		{"VersionPolicy", a.VersionPolicy, b.VersionPolicy}, {"Traffic", a.Traffic, b.Traffic},
		{"DefaultModelFilename", a.DefaultModelFilename, b.DefaultModelFilename},
		{"Parameters", string(a.Parameters), string(b.Parameters)}, {"Warmup", a.Warmup, b.Warmup}, {"Ignored", a.Ignored, b.Ignored},
	} {
		if !reflect.DeepEqual(d.a, d.b) {
			return fmt.Sprintf("%s\n%+v\n%+v", d.what, d.a, d.b)
		}
	}
	return ""
}

// normalize compacts raw JSON so two spellings of the same value compare
// equal.
func normalize(c *repository.Config) {
	compact := func(raw json.RawMessage) json.RawMessage {
		if raw == nil {
			return nil
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return raw
		}
		b, _ := json.Marshal(v)
		return b
	}
	c.Parameters = compact(c.Parameters)
	if len(c.Warmup) == 0 {
		c.Warmup = nil // "model_warmup": [] is omitted when written back
	}
	for i := range c.Warmup {
		for name, in := range c.Warmup[i].Inputs {
			in.Data = compact(in.Data)
			c.Warmup[i].Inputs[name] = in
		}
	}
}
