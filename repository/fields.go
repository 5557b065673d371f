package repository

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/servekit/servekit/serving/modelconfigpb"
)

// LoaderField names a part of the configuration that only the LoadFunc can
// apply, because applying it means building the version's chain: a
// batcher, a cache, a device, session options. The repository hands the
// whole Config to the LoadFunc (Version.Config) and, unless told with
// WithLoaderFields that the LoadFunc applies a field, reports it as
// ignored: a setting is never dropped in silence. Package repository does
// not import package batch or cache (composition is the caller's: the
// order of the chain, cache sizes, a shared L2), so it cannot apply them
// itself; cmd/servekit (triton.go) shows the mapping.
type LoaderField string

// The fields a LoadFunc may apply, with the Config method that reads each.
const (
	// FieldDynamicBatching: dynamic_batching, read with Config.Batching.
	FieldDynamicBatching LoaderField = "dynamic_batching"
	// FieldResponseCache: response_cache, read with Config.ResponseCache.
	FieldResponseCache LoaderField = "response_cache"
	// FieldInstanceGroup: instance_group's kind, count and gpus, read with
	// Config.Instances.
	FieldInstanceGroup LoaderField = "instance_group"
	// FieldGraphOptimization: optimization.graph.level, read with
	// Config.GraphOptimization.
	FieldGraphOptimization LoaderField = "optimization.graph"
)

var loaderFields = []LoaderField{FieldDynamicBatching, FieldResponseCache, FieldInstanceGroup, FieldGraphOptimization}

type ruleKind uint8

const (
	ruleIgnored ruleKind = iota // the zero rule: what is not listed is ignored
	ruleHandled                 // the repository applies or checks it
	ruleLoader                  // the LoadFunc applies it
	ruleRefused                 // the model cannot be served faithfully
)

// fieldRule says what servekit does with a field, by its path without
// indexes ("instance_group.kind"). descend: the fields inside it have
// rules of their own; otherwise the rule covers everything inside.
type fieldRule struct {
	kind    ruleKind
	why     string
	loader  LoaderField
	descend bool
}

func handled() fieldRule             { return fieldRule{kind: ruleHandled} }
func ignored(why string) fieldRule   { return fieldRule{kind: ruleIgnored, why: why} }
func refused(why string) fieldRule   { return fieldRule{kind: ruleRefused, why: why} }
func loader(f LoaderField) fieldRule { return fieldRule{kind: ruleLoader, loader: f} }
func within(r fieldRule) fieldRule   { r.descend = true; return r }

// fieldRules is the table of the package doc. A field missing from it is
// ignored ("not implemented"), so a field Triton adds is reported, never
// passed over.
var fieldRules = map[string]fieldRule{
	"name":           handled(),
	"platform":       handled(),
	"backend":        handled(),
	"runtime":        ignored("the loader picks the runtime"),
	"version_policy": handled(),
	"max_batch_size": handled(),

	"input":                         within(handled()),
	"input.name":                    handled(),
	"input.data_type":               handled(),
	"input.format":                  handled(),
	"input.dims":                    handled(),
	"input.reshape":                 handled(),
	"input.is_shape_tensor":         ignored("shape tensors are TensorRT's"),
	"input.allow_ragged_batch":      ignored("requests of different shapes are not batched together"),
	"input.optional":                ignored("a request must send every input the model has"),
	"input.is_non_linear_format_io": ignored("non-linear I/O formats are TensorRT's"),

	"output":                         within(handled()),
	"output.name":                    handled(),
	"output.data_type":               handled(),
	"output.dims":                    handled(),
	"output.reshape":                 handled(),
	"output.label_filename":          ignored("label files are not read: the classification extension takes the model's own class labels"),
	"output.is_shape_tensor":         ignored("shape tensors are TensorRT's"),
	"output.is_non_linear_format_io": ignored("non-linear I/O formats are TensorRT's"),

	"batch_input":  refused("ragged batching is not implemented: the model would not get the inputs it expects"),
	"batch_output": refused("ragged batching is not implemented: the model's outputs would not be scattered"),

	"optimization":                                within(handled()),
	"optimization.graph":                          loader(FieldGraphOptimization),
	"optimization.priority":                       ignored("model priorities are not implemented"),
	"optimization.cuda":                           ignored("CUDA graphs and stream options are not applied"),
	"optimization.execution_accelerators":         ignored("execution accelerators (TensorRT, OpenVINO) are not used"),
	"optimization.input_pinned_memory":            ignored("disabling pinned buffers is not implemented"),
	"optimization.output_pinned_memory":           ignored("disabling pinned buffers is not implemented"),
	"optimization.gather_kernel_buffer_threshold": ignored("pinned buffers are ONNX Runtime's choice"),
	"optimization.eager_batching":                 ignored("the batcher's own rules decide when a batch runs"),

	"dynamic_batching":                                                   within(loader(FieldDynamicBatching)),
	"dynamic_batching.preferred_batch_size":                              loader(FieldDynamicBatching),
	"dynamic_batching.max_queue_delay_microseconds":                      loader(FieldDynamicBatching),
	"dynamic_batching.priority_levels":                                   loader(FieldDynamicBatching),
	"dynamic_batching.default_priority_level":                            loader(FieldDynamicBatching),
	"dynamic_batching.default_queue_policy":                              within(loader(FieldDynamicBatching)),
	"dynamic_batching.default_queue_policy.max_queue_size":               loader(FieldDynamicBatching),
	"dynamic_batching.default_queue_policy.default_timeout_microseconds": loader(FieldDynamicBatching),
	"dynamic_batching.default_queue_policy.allow_timeout_override":       loader(FieldDynamicBatching),
	"dynamic_batching.default_queue_policy.timeout_action":               ignored("DELAY: servekit has no queue of delayed requests, so no timeout applies"),
	"dynamic_batching.preserve_ordering":                                 ignored("each request is answered on its own call"),
	"dynamic_batching.priority_queue_policy":                             ignored("per-level queue policies: default_queue_policy applies to every level"),

	"sequence_batching":   refused("sequence batching (stateful models) is not implemented"),
	"ensemble_scheduling": refused("ensembles are not implemented: serve each model and chain them in the caller"),

	"instance_group":                   within(loader(FieldInstanceGroup)),
	"instance_group.name":              handled(),
	"instance_group.kind":              loader(FieldInstanceGroup),
	"instance_group.count":             loader(FieldInstanceGroup),
	"instance_group.gpus":              loader(FieldInstanceGroup),
	"instance_group.rate_limiter":      ignored("Triton's rate limiter is not implemented"),
	"instance_group.secondary_devices": ignored("secondary devices (NVDLA) are not used"),
	"instance_group.host_policy":       ignored("host policies are not implemented"),
	"instance_group.profile":           ignored("TensorRT optimisation profiles are not used"),
	"instance_group.passive":           ignored("passive instances are not implemented"),

	"default_model_filename":             handled(),
	"cc_model_filenames":                 ignored("one model file per version, whatever the GPU"),
	"metric_tags":                        ignored("metric labels are the server's"),
	"parameters":                         handled(), // the LoadFunc decodes them and refuses what it does not know
	"model_warmup":                       handled(),
	"model_operations":                   ignored("custom operator libraries are not loaded"),
	"model_transaction_policy":           within(handled()),
	"model_transaction_policy.decoupled": refused("decoupled models are not implemented: one request gets one response"),
	"model_repository_agents":            ignored("repository agents are not run"),
	"response_cache":                     loader(FieldResponseCache),
	"model_metrics":                      ignored("metric options are the server's"),
}

// classify walks the fields set in m. It returns those servekit ignores
// and those it refuses, each as "field: why", and records in uses which
// set fields are the LoadFunc's.
func classify(m *modelconfigpb.ModelConfig) (ignoredFields, refusedFields []string, uses []loaderUse) {
	note := func(path string, r fieldRule) {
		switch r.kind {
		case ruleIgnored:
			why := r.why
			if why == "" {
				why = "not implemented"
			}
			ignoredFields = append(ignoredFields, path+": "+why)
		case ruleRefused:
			refusedFields = append(refusedFields, path+": "+r.why)
		case ruleLoader:
			uses = append(uses, loaderUse{r.loader, path})
		}
	}
	var walk func(msg protoreflect.Message, path, key string)
	walk = func(msg protoreflect.Message, path, key string) {
		fields := msg.Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if !msg.Has(fd) {
				continue
			}
			p, k := join(path, string(fd.Name())), join(key, string(fd.Name()))
			r := fieldRules[k] // missing: ignored, not implemented
			if !r.descend || fd.Message() == nil || fd.IsMap() {
				note(p, r)
				continue
			}
			if r.kind != ruleHandled {
				note(p, r)
			}
			if !fd.IsList() {
				walk(msg.Get(fd).Message(), p, k)
				continue
			}
			list := msg.Get(fd).List()
			for j := range list.Len() {
				walk(list.Get(j).Message(), fmt.Sprintf("%s[%d]", p, j), k)
			}
		}
	}
	// Values that change what a field means.
	if m.Platform == "ensemble" {
		refusedFields = append(refusedFields, `platform "ensemble": ensembles are not implemented: serve each model and chain them in the caller`)
	}
	groups := m.InstanceGroup
	opt := m.GetOptimization()
	// Triton prints pinned memory as enabled, its default, in every
	// configuration it returns: servekit does the same as that default.
	pinned := opt.GetInputPinnedMemory().GetEnable() || opt.GetOutputPinnedMemory().GetEnable()
	if len(groups) > 1 || pinned {
		m = proto.Clone(m).(*modelconfigpb.ModelConfig)
	}
	if pinned {
		if m.Optimization.InputPinnedMemory.GetEnable() {
			m.Optimization.InputPinnedMemory = nil
		}
		if m.Optimization.OutputPinnedMemory.GetEnable() {
			m.Optimization.OutputPinnedMemory = nil
		}
	}
	if len(groups) > 1 {
		m.InstanceGroup = m.InstanceGroup[:1]
		for i := range groups[1:] {
			ignoredFields = append(ignoredFields, fmt.Sprintf("instance_group[%d]: one copy of each version runs; the first group places it", i+1))
		}
	}
	walk(m.ProtoReflect(), "", "")
	if len(groups) > 0 {
		g := groups[0]
		if len(g.Gpus) > 1 {
			ignoredFields = append(ignoredFields, fmt.Sprintf("instance_group[0].gpus %v: a version runs on one device, the first", g.Gpus))
		}
		if g.Kind == modelconfigpb.ModelInstanceGroup_KIND_MODEL {
			ignoredFields = append(ignoredFields, "instance_group[0].kind KIND_MODEL: the loader's default device is used")
		}
	}
	return ignoredFields, refusedFields, uses
}

// loaderUse is one set field that the LoadFunc is to apply.
type loaderUse struct {
	field LoaderField
	path  string
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// unapplied lists, as ignored fields, the set fields the LoadFunc does not
// apply: the outermost one of each (dynamic_batching, not each of its
// settings).
func unapplied(uses []loaderUse, applied []LoaderField) []string {
	var out []string
	seen := map[LoaderField]bool{}
	for _, u := range uses {
		if !seen[u.field] && !slices.Contains(applied, u.field) {
			seen[u.field] = true
			out = append(out, u.path+": the loader does not apply it (see repository.WithLoaderFields)")
		}
	}
	return out
}
