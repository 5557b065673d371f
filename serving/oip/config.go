package oip

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
)

// Config returns the configuration model name is served with at version
// ("" = the default), in Triton's schema: the model-configuration
// extension's answer. A model from a repository (AttachRepository) has its
// config.pbtxt, completed where it leaves out what the model says (name,
// platform, inputs, outputs), as Triton's auto-complete completes it. Any
// other model gets one made from its metadata (SynthesizeConfig). Unknown
// names and versions are NotFound errors. The result is the caller's.
func (s *Server) Config(name, version string) (*mc.ModelConfig, error) {
	t, err := s.Resolve(name, version)
	if err != nil {
		return nil, err
	}
	md := t.Metadata()
	if r := s.repo.Load(); r != nil {
		if c, ok := r.r.ModelConfig(name); ok && c != nil {
			return complete(proto.CloneOf(c), name, md), nil
		}
	}
	return SynthesizeConfig(name, md, s.Versions(name)), nil
}

// SynthesizeConfig makes the configuration of a model served without one
// from what its chain says about it, as Triton's auto-complete makes one
// from the model file: name, platform and backend, inputs and outputs
// with Triton's data types, max_batch_size and dynamic_batching when a
// layer batches (serving.Metadata.MaxBatchRows: dims then leave out the
// batch dimension, as Triton's do), response_cache when a layer caches,
// an instance group on the device the model runs on, and the versions
// served as a specific version policy. A chain that does not batch gets
// max_batch_size 0 and full dims: servekit never claims batching it does
// not do.
func SynthesizeConfig(name string, md serving.Metadata, versions []string) *mc.ModelConfig {
	c := &mc.ModelConfig{Name: name, Platform: md.Platform}
	if md.Platform == "onnxruntime_onnx" {
		c.Backend = "onnxruntime"
	}
	batched := md.MaxBatchRows > 0 && md.Batchable()
	if batched {
		c.MaxBatchSize = int32(min(md.MaxBatchRows, 1<<30))
		c.SchedulingChoice = &mc.ModelConfig_DynamicBatching{DynamicBatching: &mc.ModelDynamicBatching{
			MaxQueueDelayMicroseconds: uint64(max(md.BatchDelay, 0) / time.Microsecond),
		}}
	}
	c.Input, c.Output = configInputs(md.Inputs, batched), configOutputs(md.Outputs, batched)
	if md.ResponseCache {
		c.ResponseCache = &mc.ModelResponseCache{Enable: true}
	}
	c.InstanceGroup = []*mc.ModelInstanceGroup{instanceGroup(name, md.Device)}
	c.ModelTransactionPolicy = &mc.ModelTransactionPolicy{}
	if vs := numericVersions(versions); len(vs) > 0 {
		c.VersionPolicy = &mc.ModelVersionPolicy{PolicyChoice: &mc.ModelVersionPolicy_Specific_{
			Specific: &mc.ModelVersionPolicy_Specific{Versions: vs}}}
	}
	return c
}

// complete fills what a repository's configuration leaves out and the
// model says, as Triton's auto-complete does; it keeps everything set.
func complete(c *mc.ModelConfig, name string, md serving.Metadata) *mc.ModelConfig {
	if c.Name == "" {
		c.Name = name
	}
	if c.Platform == "" && c.Backend == "" {
		c.Platform = md.Platform
		if md.Platform == "onnxruntime_onnx" {
			c.Backend = "onnxruntime"
		}
	}
	batched := c.MaxBatchSize > 0
	if len(c.Input) == 0 {
		c.Input = configInputs(md.Inputs, batched)
	}
	if len(c.Output) == 0 {
		c.Output = configOutputs(md.Outputs, batched)
	}
	if c.ModelTransactionPolicy == nil {
		c.ModelTransactionPolicy = &mc.ModelTransactionPolicy{}
	}
	return c
}

func configInputs(specs []serving.TensorSpec, batched bool) []*mc.ModelInput {
	out := make([]*mc.ModelInput, len(specs))
	for i, s := range specs {
		out[i] = &mc.ModelInput{Name: s.Name, DataType: ConfigType(s.DataType), Dims: dims(s.Shape, batched)}
	}
	return out
}

func configOutputs(specs []serving.TensorSpec, batched bool) []*mc.ModelOutput {
	out := make([]*mc.ModelOutput, len(specs))
	for i, s := range specs {
		out[i] = &mc.ModelOutput{Name: s.Name, DataType: ConfigType(s.DataType), Dims: dims(s.Shape, batched)}
	}
	return out
}

// dims leaves out the batch dimension when the model batches, as Triton's
// configuration does.
func dims(shape []int64, batched bool) []int64 {
	if batched && len(shape) > 0 {
		shape = shape[1:]
	}
	return slices.Clone(shape)
}

// ConfigType is the configuration's name of a protocol datatype: TYPE_FP32
// for FP32, TYPE_STRING for BYTES.
func ConfigType(dt serving.DataType) mc.DataType {
	if dt == serving.Bytes {
		return mc.DataType_TYPE_STRING
	}
	return mc.DataType(mc.DataType_value["TYPE_"+dt.String()])
}

// instanceGroup is Triton's auto-completed group: one instance where the
// model runs ("cuda:1" is KIND_GPU on GPU 1).
func instanceGroup(name, device string) *mc.ModelInstanceGroup {
	g := &mc.ModelInstanceGroup{Name: name, Count: 1, Kind: mc.ModelInstanceGroup_KIND_CPU}
	if n, ok := strings.CutPrefix(device, "cuda"); ok {
		g.Kind = mc.ModelInstanceGroup_KIND_GPU
		id, _ := strconv.Atoi(strings.TrimPrefix(n, ":"))
		g.Gpus = []int32{int32(id)}
	}
	return g
}

// numericVersions are the versions as the policy lists them, or nil when
// one is not a number (a version policy cannot name it).
func numericVersions(versions []string) []int64 {
	out := make([]int64, 0, len(versions))
	for _, v := range versions {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
