package repository_test

import (
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/servingtest"
)

// Configurations written the way Triton's documentation and example
// repositories write them: comments, "key : value", lists in brackets,
// repeated messages both as a list and one by one.
const (
	// docs/examples/model_repository/simple: add and subtract.
	simplePbtxt = `
# Triton's "simple" example.
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "INPUT0"
    data_type: TYPE_INT32
    dims: [ 16 ]
  },
  {
    name: "INPUT1"
    data_type: TYPE_INT32
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_INT32
    dims: [ 16 ]
  },
  {
    name: "OUTPUT1"
    data_type: TYPE_INT32
    dims: [ 16 ]
  }
]
`
	// The same model as Triton's model-configuration endpoint returns it
	// (every field printed, 64-bit integers as numbers), saved as
	// config.json.
	simpleJSON = `{"name":"simple","platform":"onnxruntime_onnx","backend":"onnxruntime","runtime":"",
"version_policy":{"latest":{"num_versions":1}},"max_batch_size":8,
"input":[{"name":"INPUT0","data_type":"TYPE_INT32","format":"FORMAT_NONE","dims":[16],"is_shape_tensor":false,"allow_ragged_batch":false,"optional":false,"is_non_linear_format_io":false},
         {"name":"INPUT1","data_type":"TYPE_INT32","format":"FORMAT_NONE","dims":[16],"is_shape_tensor":false,"allow_ragged_batch":false,"optional":false,"is_non_linear_format_io":false}],
"output":[{"name":"OUTPUT0","data_type":"TYPE_INT32","dims":[16],"label_filename":"","is_shape_tensor":false,"is_non_linear_format_io":false},
          {"name":"OUTPUT1","data_type":"TYPE_INT32","dims":[16],"label_filename":"","is_shape_tensor":false,"is_non_linear_format_io":false}],
"batch_input":[],"batch_output":[],
"optimization":{"priority":"PRIORITY_DEFAULT","input_pinned_memory":{"enable":true},"output_pinned_memory":{"enable":true},"gather_kernel_buffer_threshold":0,"eager_batching":false},
"dynamic_batching":{"preferred_batch_size":[4],"max_queue_delay_microseconds":100,"preserve_ordering":false,"priority_levels":0,"default_priority_level":0,"priority_queue_policy":{}},
"instance_group":[{"name":"simple","kind":"KIND_CPU","count":2,"gpus":[],"secondary_devices":[],"profile":[],"passive":false,"host_policy":""}],
"default_model_filename":"model.onnx","cc_model_filenames":{},"metric_tags":{},"parameters":{},"model_warmup":[]}`

	// docs/examples/model_repository/densenet_onnx: an image classifier
	// whose output reshape drops the model's trailing 1×1.
	densenetPbtxt = `
name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size : 4
input [
  {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 4, 4 ]
  }
]
output [
  {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 5 ]
    reshape { shape: [ 5, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  }
]
`
	// The same classifier as Triton's older examples configured it:
	// without batching, both tensors reshaped.
	densenetUnbatchedPbtxt = `
name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size: 0
input { name: "data_0" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 3, 4, 4 ] reshape { shape: [ 1, 3, 4, 4 ] } }
output { name: "fc6_1" data_type: TYPE_FP32 dims: [ 5 ] reshape { shape: [ 1, 5, 1, 1 ] } }
`
	// docs/examples/model_repository/simple_sequence.
	sequencePbtxt = `
name: "simple_sequence"
platform: "onnxruntime_onnx"
max_batch_size: 8
sequence_batching {
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] }
  ]
}
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
instance_group [ { kind: KIND_CPU } ]
`
	// docs/examples/model_repository/preprocess_resnet50_ensemble.
	ensemblePbtxt = `
name: "preprocess_resnet50_ensemble"
platform: "ensemble"
max_batch_size: 128
input [ { name: "INPUT" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_FP32 dims: [ 1000 ] } ]
ensemble_scheduling {
  step [
    {
      model_name: "image_preprocess_nchw_3x224x224_inception"
      model_version: -1
      input_map { key: "INPUT" value: "INPUT" }
      output_map { key: "OUTPUT" value: "preprocessed_image" }
    },
    {
      model_name: "resnet50_netdef"
      model_version: -1
      input_map { key: "gpu_0/data" value: "preprocessed_image" }
      output_map { key: "gpu_0/softmax" value: "OUTPUT" }
    }
  ]
}
`
)

func TestParseTritonConfigs(t *testing.T) {
	simple, err := repository.ParseConfigText([]byte(simplePbtxt))
	if err != nil {
		t.Fatal(err)
	}
	if simple.MaxBatchSize() != 8 || len(simple.Model.Input) != 2 || simple.Model.Output[1].Name != "OUTPUT1" || len(simple.Ignored) != 0 {
		t.Errorf("simple: %v, ignored %v", simple.Model, simple.Ignored)
	}
	if _, ok := simple.Batching(); ok {
		t.Error("simple has no dynamic_batching, but Batching says it has")
	}
	dense, err := repository.ParseConfigText([]byte(densenetPbtxt))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"output[0].label_filename: label files are not read: the classification extension takes the model's own class labels"}; !slices.Equal(dense.Ignored, want) {
		t.Errorf("densenet ignored %q, want %q", dense.Ignored, want)
	}
	if _, err := repository.ParseConfigText([]byte(densenetUnbatchedPbtxt)); err != nil {
		t.Error(err)
	}

	// Triton's JSON form: the same model, and nothing ignored that Triton
	// itself printed as its defaults.
	j, err := repository.ParseConfig([]byte(simpleJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Ignored) != 0 {
		t.Errorf("Triton's own JSON: ignored %q", j.Ignored)
	}
	b, _ := j.Batching()
	in, _ := j.Instances()
	if b.MaxBatchSize != 8 || !slices.Equal(b.PreferredBatchSizes, []int{4}) || b.MaxQueueDelay.Microseconds() != 100 ||
		b.PriorityLevels != 1 || b.DefaultPriority != 1 || in.Kind != repository.DeviceCPU || in.Count != 2 {
		t.Errorf("from Triton's JSON: batching %+v, instances %+v", b, in)
	}
	jm, sm := proto.Clone(j.Model).(*modelconfigpb.ModelConfig), proto.Clone(simple.Model).(*modelconfigpb.ModelConfig)
	for _, m := range []*modelconfigpb.ModelConfig{jm, sm} {
		m.Backend, m.VersionPolicy, m.Optimization, m.SchedulingChoice, m.InstanceGroup, m.DefaultModelFilename = "", nil, nil, nil, nil, ""
	}
	if !proto.Equal(jm, sm) {
		t.Errorf("JSON form differs from config.pbtxt:\n%v\n%v", jm, sm)
	}
}

// Every field servekit does not implement is listed, with why; those a
// loader may apply are the loader's.
func TestTritonIgnoredFields(t *testing.T) {
	c, err := repository.ParseConfigText([]byte(`
max_batch_size: 8
dynamic_batching {
  preferred_batch_size: [ 2, 4 ]
  max_queue_delay_microseconds: 500
  preserve_ordering: true
  priority_levels: 2
  default_priority_level: 2
  default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 1000 max_queue_size: 16 }
  priority_queue_policy { key: 1 value: { max_queue_size: 4 } }
}
instance_group [
  { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] rate_limiter { resources [ { name: "R1" global: True count: 4 } ] priority: 2 } },
  { count: 1 kind: KIND_CPU }
]
optimization { cuda { graphs: true } execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" } ] } graph { level: 1 } }
model_metrics { metric_control [ { metric_identifier { family: "nv_inference_request_duration_us" } histogram_options { buckets: [ 1, 10 ] } } ] }
response_cache { enable: true }
cc_model_filenames { key: "7.5" value: "model_t4.onnx" }
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"instance_group[1]: one copy of each version runs; the first group places it",
		"optimization.cuda: CUDA graphs and stream options are not applied",
		"optimization.execution_accelerators: execution accelerators (TensorRT, OpenVINO) are not used",
		"dynamic_batching.preserve_ordering: each request is answered on its own call",
		"dynamic_batching.default_queue_policy.timeout_action: DELAY: servekit has no queue of delayed requests, so no timeout applies",
		"dynamic_batching.priority_queue_policy: per-level queue policies: default_queue_policy applies to every level",
		"instance_group[0].rate_limiter: Triton's rate limiter is not implemented",
		"cc_model_filenames: one model file per version, whatever the GPU",
		"model_metrics: metric options are the server's",
		"instance_group[0].gpus [0 1]: a version runs on one device, the first",
	}
	if !slices.Equal(c.Ignored, want) {
		t.Errorf("ignored:\n%s\nwant:\n%s", strings.Join(c.Ignored, "\n"), strings.Join(want, "\n"))
	}
	b, _ := c.Batching()
	if b.DefaultTimeout != 0 || b.MaxQueueSize != 16 || b.PriorityLevels != 2 || b.DefaultPriority != 2 || !slices.Equal(b.PreferredBatchSizes, []int{2, 4}) {
		t.Errorf("batching %+v (DELAY: no timeout)", b)
	}
	in, _ := c.Instances()
	if in.Kind != repository.DeviceGPU || !slices.Equal(in.GPUs, []int{0, 1}) || in.Count != 2 {
		t.Errorf("instances %+v", in)
	}
	if on, set := c.ResponseCache(); !on || !set {
		t.Errorf("response cache %v %v", on, set)
	}
	if level, set := c.GraphOptimization(); level != 1 || !set {
		t.Errorf("graph level %d %v", level, set)
	}

	// In a repository: the loader's fields are listed too unless the
	// loader applies them; the list is logged once; strict mode refuses.
	root := tree(t, map[string]string{"m/1/model.onnx": "ok",
		"m/config.pbtxt": `dynamic_batching { } max_batch_size: 2 response_cache { enable: true }
instance_group { kind: KIND_CPU } optimization { graph { level: -1 } }
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt" } ]`})
	f := newBatchableLoader()
	var logs logBuffer
	r := open(t, root, f.loader(), repository.WithLogger(logs.logger()))
	resync(t, r)
	resync(t, r)
	st := r.Status().Models[0]
	if want := []string{
		"output[0].label_filename: label files are not read: the classification extension takes the model's own class labels",
		"optimization.graph: the loader does not apply it (see repository.WithLoaderFields)",
		"dynamic_batching: the loader does not apply it (see repository.WithLoaderFields)",
		"instance_group: the loader does not apply it (see repository.WithLoaderFields)",
		"response_cache: the loader does not apply it (see repository.WithLoaderFields)",
	}; !slices.Equal(st.Ignored, want) {
		t.Errorf("status ignored:\n%s\nwant:\n%s", strings.Join(st.Ignored, "\n"), strings.Join(want, "\n"))
	}
	if got := states(r, "m"); got != "1:ready" {
		t.Errorf("ignored fields must not stop the model: %s", got)
	}
	if n := strings.Count(logs.String(), "fields ignored"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}

	r2 := open(t, root, f.loader(), repository.WithLoaderFields(repository.FieldDynamicBatching, repository.FieldResponseCache,
		repository.FieldInstanceGroup, repository.FieldGraphOptimization))
	if got := r2.Status().Models[0].Ignored; len(got) != 1 {
		t.Errorf("with the loader's fields applied, ignored %q", got)
	}

	r3 := open(t, root, f.loader(), repository.WithStrictConfig())
	st = r3.Status().Models[0]
	if !strings.Contains(st.Reason, "strict mode") || !strings.Contains(st.Reason, "label_filename") || len(st.Versions) != 0 {
		t.Errorf("strict mode: %+v", st)
	}
	if _, err := repository.Open(context.Background(), root, f.loader().Load, repository.WithLoaderFields("sequence_batching")); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("WithLoaderFields(sequence_batching): %v", err)
	}
}

// What servekit cannot serve faithfully is refused with the reason, not
// half served.
func TestTritonConfigRefused(t *testing.T) {
	for name, tc := range map[string]struct{ config, want string }{
		"sequence":  {sequencePbtxt, "sequence_batching: sequence batching (stateful models) is not implemented"},
		"ensemble":  {ensemblePbtxt, `platform "ensemble": ensembles are not implemented`},
		"ragged":    {`batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_INT32 source_input: "x" } ]`, "batch_input: ragged batching"},
		"decoupled": {`model_transaction_policy { decoupled: true }`, "model_transaction_policy.decoupled: decoupled models are not implemented"},
	} {
		_, err := repository.ParseConfigText([]byte(tc.config))
		if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "servekit cannot serve this model: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument with %q", name, err, tc.want)
		}
	}
	_, err := repository.ParseConfigText([]byte(ensemblePbtxt))
	if !strings.Contains(err.Error(), "ensemble_scheduling: ensembles are not implemented") {
		t.Errorf("the ensemble's two reasons: %v", err)
	}
	// In a repository the model reports why and loads nothing.
	root := tree(t, map[string]string{"simple_sequence/config.pbtxt": sequencePbtxt, "simple_sequence/1/model.onnx": "ok"})
	r := open(t, root, newLoader())
	st := r.Status().Models[0]
	if !strings.Contains(st.Reason, "config.pbtxt: servekit cannot serve this model: sequence_batching") || len(st.Versions) != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestParseConfigTextErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`max_batch_size: "eight"`, `(line 1:17): invalid value for int32 type: "eight"`},
		{`version_polcy { all { } }`, `unknown field: version_polcy`},
		{`input [ { name: "x" data_type: TYPE_FP32 } ]`, `input "x": dims []: empty`},
		{`input [ { name: "x" dims: [ 4 ] } ]`, `input "x": data_type: missing`},
		{`input [ { name: "x" data_type: TYPE_FP32 dims: [ -2 ] } ]`, "dim -2"},
		{`input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]`, `input "x" listed twice`},
		{`input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] reshape { shape: [ 3 ] } } ]`, "3 elements, not 4"},
		{`input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] reshape { shape: [ 2, 2 ] } } ]`, "needs one too"},
		{`input [ { name: "x" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 4 ] } ]`, "three dims"},
		{`max_batch_size: -1`, "max_batch_size -1"},
		{`dynamic_batching { }`, "dynamic_batching needs max_batch_size"},
		{`max_batch_size: 4 dynamic_batching { preferred_batch_size: [ 8 ] }`, "preferred_batch_size 8"},
		{`max_batch_size: 4 dynamic_batching { max_queue_delay_microseconds: 600000000 }`, "max_queue_delay_microseconds"},
		{`max_batch_size: 4 dynamic_batching { priority_levels: 2 default_priority_level: 3 }`, "default_priority_level 3"},
		{`max_batch_size: 4 dynamic_batching { default_priority_level: 1 }`, "without priority_levels"},
		{`instance_group [ { kind: KIND_CPU gpus: [ 0 ] } ]`, "gpus [0] with kind KIND_CPU"},
		{`instance_group [ { count: -1 } ]`, "count -1"},
		{`optimization { graph { level: 7 } }`, "level 7"},
		{`version_policy { latest { num_versions: 0 } }`, "num_versions 0"},
		{`model_warmup [ { batch_size: 2 inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]`, "batch_size 2: the model does not batch"},
		{`max_batch_size: 2 model_warmup [ { batch_size: 3 inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]`, "batch_size 3: at most max_batch_size 2"},
		{`model_warmup [ { inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] } } } ]`, "exactly one of"},
		{`model_warmup [ { inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "../x" } } } ]`, "input_data_file"},
		{`default_model_filename: "a/b.onnx"`, "default_model_filename"},
	} {
		_, err := repository.ParseConfigText([]byte(tc.config))
		if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "repository: config.pbtxt: ") {
			t.Errorf("ParseConfigText(%s):\n  %v\n  want InvalidArgument from config.pbtxt containing %q", tc.config, err, tc.want)
		}
	}
}

// The repository honours version_policy in config.pbtxt as in config.json.
func TestTritonVersionPolicy(t *testing.T) {
	for policy, want := range map[string]string{
		``: "3:ready",
		`version_policy: { latest: { num_versions: 2 } }`:    "2:ready 3:ready",
		`version_policy: { all { } }`:                        "1:ready 2:ready 3:ready",
		`version_policy: { specific: { versions: [1, 3] } }`: "1:ready 3:ready",
	} {
		root := tree(t, map[string]string{"m/config.pbtxt": policy, "m/1/model.onnx": "ok", "m/2/model.onnx": "ok", "m/3/model.onnx": "ok"})
		if got := states(open(t, root, newLoader()), "m"); got != want {
			t.Errorf("%q: %s, want %s", policy, got, want)
		}
	}
	root := tree(t, map[string]string{"m/config.pbtxt": `version_policy: { all { } }`, "m/1/model.onnx": "ok"})
	r := open(t, root, newLoader())
	if c, ok := r.Config("m"); !ok || c.Model.GetName() != "m" || c.VersionPolicy.String() != "all" {
		t.Errorf("Config: %v %v; want the file's, named after the directory", c, ok)
	}
	if _, ok := r.Config("nope"); ok {
		t.Error("Config of a model the repository does not hold")
	}
	root = tree(t, map[string]string{"m/config.pbtxt": `name: "other"`, "m/1/model.onnx": "ok"})
	if st := open(t, root, newLoader()).Status().Models[0]; !strings.Contains(st.Reason, `name "other"`) {
		t.Errorf("a name that is not the directory's: %+v", st)
	}
	root = tree(t, map[string]string{"m/config.pbtxt": ``, "m/config.json": `{}`, "m/1/model.onnx": "ok"})
	if st := open(t, root, newLoader()).Status().Models[0]; !strings.Contains(st.Reason, "keep one") {
		t.Errorf("both files: %+v", st)
	}
}

// Triton's warm-up: dims leave out the batch dimension, batch_size rows
// repeat the sample, and input_data_file gives one row's raw values.
func TestTritonWarmup(t *testing.T) {
	raw := make([]byte, 16)
	for i, v := range []float32{1, -2, 3.5, 0} {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	root := tree(t, map[string]string{
		"m/1/model.onnx":   "ok",
		"m/warmup/row.f32": string(raw),
		"m/config.pbtxt": `
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
model_warmup [
  { name: "file rows" batch_size: 3 count: 2 inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "row.f32" } } },
  { name: "zeros" inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } }
]`,
	})
	f := newBatchableLoader()
	r := open(t, root, f.loader())
	if got := states(r, "m"); got != "1:ready" {
		t.Fatalf("state %s: %+v", got, r.Status())
	}
	warm := f.warmups()
	if len(warm) != 3 {
		t.Fatalf("%d warm-up requests, want 2 + 1", len(warm))
	}
	x, _ := warm[0].Input("x")
	v, _ := serving.Values[float32](x)
	if !slices.Equal(x.Shape, []int64{3, 4}) || !slices.Equal(v, []float32{1, -2, 3.5, 0, 1, -2, 3.5, 0, 1, -2, 3.5, 0}) {
		t.Errorf("file sample: %v %v, want the row 3 times", x.Shape, v)
	}
	if x, _ := warm[2].Input("x"); !slices.Equal(x.Shape, []int64{1, 4}) {
		t.Errorf("batch_size 0 means one row: %v", x.Shape)
	}
	// A file of the wrong size fails the version with the reason.
	write(t, root, map[string]string{"m/warmup/row.f32": "short"})
	write(t, root, map[string]string{"m/config.pbtxt": strings.Replace(readFile(t, root, "m/config.pbtxt"), "count: 2", "count: 3", 1)})
	resync(t, r)
	if vs := versionStatus(r, "m", "1"); !strings.Contains(vs.Reason, "row.f32") || !strings.Contains(vs.Reason, "raw bytes") {
		t.Errorf("short file: %+v", vs)
	}
}

// Triton's parameters are strings; DecodeParameters fills typed fields
// from them.
func TestTritonParameters(t *testing.T) {
	c, err := repository.ParseConfigText([]byte(`
parameters { key: "intra_op_threads" value: { string_value: "2" } }
parameters: { key: "memory_arena" value: { string_value: "0" } }
parameters [ { key: "graph_optimization" value: { string_value: "basic" } }, { key: "enabled" value: { string_value: "true" } } ]`))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Threads *int    `json:"intra_op_threads"`
		Arena   *bool   `json:"memory_arena"`
		Graph   *string `json:"graph_optimization"`
		Enabled bool    `json:"enabled"`
	}
	v := repository.Version{Model: "m", Parameters: c.Parameters, Config: c}
	if err := v.DecodeParameters(&p); err != nil || p.Threads == nil || *p.Threads != 2 || p.Arena == nil || *p.Arena || *p.Graph != "basic" || !p.Enabled {
		t.Errorf("decoded %+v, %v", p, err)
	}
	var narrow struct {
		Threads int `json:"intra_op_threads"`
	}
	if err := v.DecodeParameters(&narrow); serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), `unknown field "enabled"`) {
		t.Errorf("an unknown parameter: %v", err)
	}
	bad := repository.Version{Model: "m", Parameters: []byte(`{"intra_op_threads": "two"}`)}
	if err := bad.DecodeParameters(&p); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("a parameter that fits no field: %v", err)
	}
	// Both forms in config.json, and Model holds them as Triton's strings.
	c, err = repository.ParseConfig([]byte(`{"parameters": {"intra_op_threads": 2, "graph_optimization": {"string_value": "basic"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Model.Parameters; got["intra_op_threads"].GetStringValue() != "2" || got["graph_optimization"].GetStringValue() != "basic" {
		t.Errorf("Model.Parameters: %v", got)
	}
	v = repository.Version{Model: "m", Parameters: c.Parameters}
	p.Threads, p.Graph = nil, nil
	if err := v.DecodeParameters(&p); err != nil || *p.Threads != 2 || *p.Graph != "basic" {
		t.Errorf("both forms: %+v %v", p, err)
	}
}

// FuzzParseConfigText: ParseConfigText never panics, refuses with
// InvalidArgument, and what it accepts reads back the same from its own
// text form.
func FuzzParseConfigText(f *testing.F) {
	for _, s := range []string{simplePbtxt, densenetPbtxt, densenetUnbatchedPbtxt, sequencePbtxt, ensemblePbtxt,
		`max_batch_size: 4 dynamic_batching { preferred_batch_size: [2] default_queue_policy { max_queue_size: 3 } }`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := repository.ParseConfigText(b)
		if err != nil {
			if serving.CodeOf(err) != serving.InvalidArgument {
				t.Fatalf("error without InvalidArgument: %v", err)
			}
			return
		}
		again, err := repository.ParseConfigText([]byte(prototext.Format(c.Model)))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", prototext.Format(c.Model), err)
		}
		if !proto.Equal(c.Model, again.Model) || !slices.Equal(c.Ignored, again.Ignored) {
			t.Fatalf("round trip changed the config:\n%v\n%v", c.Model, again.Model)
		}
	})
}

// batchableLoader loads servingtest.Linear(4) models ("x" → "y", FP32
// [-1, 4]) and records the warm-up requests they get.
type batchableLoader struct {
	rec *servingtest.Recorder
}

func newBatchableLoader() *batchableLoader {
	return &batchableLoader{}
}

func (b *batchableLoader) loader() *fakeLoader {
	f := newLoader()
	f.make = func() serving.Predictor {
		b.rec = servingtest.NewRecorder(servingtest.Linear(4))
		return b.rec
	}
	return f
}

func (b *batchableLoader) warmups() []*serving.Request {
	var out []*serving.Request
	for _, r := range b.rec.Requests() {
		if warm, _ := r.Params.Bool(serving.ParamCacheBypass); warm {
			out = append(out, r)
		}
	}
	return out
}
