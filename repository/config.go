package repository

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/modelconfigpb"
)

// The configuration files a model directory may hold; at most one of them.
const (
	// ConfigFile is servekit's JSON form: Triton's ModelConfig as Triton's
	// model-configuration endpoint prints it, plus servekit's own fields
	// ("traffic", warm-up samples with inline data or a request file).
	ConfigFile = "config.json"
	// TritonConfigFile is Triton's own: ModelConfig in protobuf text
	// format.
	TritonConfigFile = "config.pbtxt"
)

// Limits on what a config file may ask for, so a typo cannot make the
// server allocate gigabytes or spin for hours at start-up.
const (
	maxConfigBytes     = 1 << 20 // a config file
	maxRequestBytes    = 64 << 20
	maxWarmupSamples   = 64
	maxWarmupCount     = 1000
	maxWarmupElements  = 1 << 24 // per input: 64 MiB of FP32
	maxSpecificVersion = 1024    // versions listed in a "specific" policy
	maxTensors         = 1024    // inputs, outputs
	maxRank            = 64
)

// Config is a model's configuration. The zero Config is Triton's default:
// serve the latest version, send it all unversioned traffic, no warm-up,
// no batching. Build one with ParseConfig or ParseConfigText; the
// repository reads the model directory's file for each model.
//
// Model is the configuration in Triton's schema; the other fields are
// what servekit derived from it (and, for config.json, its own fields),
// checked. Both are shared by every version of the model: treat them as
// read-only.
type Config struct {
	// Model is Triton's ModelConfig as the file gave it: all of
	// config.pbtxt; for config.json, every field except servekit's own
	// (traffic, and warm-up samples in servekit's form). It is what Triton's
	// model-configuration endpoint serves. Never nil in a parsed Config.
	Model *modelconfigpb.ModelConfig
	// VersionPolicy picks the versions on disk that are served.
	VersionPolicy VersionPolicy
	// Traffic says how unversioned requests reach new versions (servekit's
	// own; config.json only).
	Traffic Traffic
	// DefaultModelFilename is the model file inside each version directory
	// (a plain file name); empty means the repository's (WithModelFile,
	// default "model.onnx").
	DefaultModelFilename string
	// Parameters are handed to the LoadFunc (Version.Parameters,
	// DecodeParameters) as a JSON object: Triton's string values, and any
	// JSON value config.json gives. The backend's own options.
	Parameters json.RawMessage
	// Warmup lists the samples each version runs before it gets traffic.
	// None by default: a version is not warmed unless configured.
	Warmup []WarmupSample
	// Ignored lists, as "field: why", the fields set that servekit does not
	// implement. The repository adds the fields its LoadFunc does not
	// apply (WithLoaderFields), logs them once and reports them in
	// ModelStatus.Ignored; WithStrictConfig refuses such a config.
	Ignored []string

	uses []loaderUse // set fields that are the LoadFunc's to apply
	file string      // the file it came from, for messages
}

// ParseConfig decodes and checks a config.json: Triton's ModelConfig in
// JSON form (field names as in config.pbtxt, or protobuf's camelCase),
// plus servekit's "traffic", warm-up samples with "data" or "request_file"
// and data types without the TYPE_ prefix, and parameters given as plain
// JSON values. A field that is neither Triton's nor servekit's is an error
// (a misspelt "num_version" must not silently mean "latest 1"), as are
// contradictions, absurd sizes, and what servekit refuses to serve
// (sequence batching, ensembles). Errors are InvalidArgument and name the
// file and the field. ParseConfig checks a file the way the repository
// does, for CI.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > maxConfigBytes {
		return nil, fileErr(ConfigFile, "%d bytes, more than the %d allowed", len(b), maxConfigBytes)
	}
	c, err := parseJSON(b)
	if err != nil {
		return nil, fileErr(ConfigFile, "%v", err)
	}
	return c, c.finish(ConfigFile)
}

// ParseConfigText decodes and checks a config.pbtxt, Triton's model
// configuration in protobuf text format, as ParseConfig checks a
// config.json.
func ParseConfigText(b []byte) (*Config, error) {
	if len(b) > maxConfigBytes {
		return nil, fileErr(TritonConfigFile, "%d bytes, more than the %d allowed", len(b), maxConfigBytes)
	}
	m := &modelconfigpb.ModelConfig{}
	if err := prototext.Unmarshal(b, m); err != nil {
		return nil, fileErr(TritonConfigFile, "%s", protoMessage(err))
	}
	c := &Config{Model: m}
	if len(m.Parameters) > 0 {
		params := make(map[string]string, len(m.Parameters))
		for k, v := range m.Parameters {
			params[k] = v.GetStringValue()
		}
		c.Parameters, _ = json.Marshal(params) // strings always marshal
	}
	for _, w := range m.ModelWarmup {
		c.Warmup = append(c.Warmup, warmupFromTriton(w))
	}
	return c, c.finish(TritonConfigFile)
}

func fileErr(file, format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "repository: "+file+": "+format, args...)
}

// finish derives servekit's view from Model and checks everything.
func (c *Config) finish(file string) error {
	m := c.model()
	c.Model = m
	c.DefaultModelFilename = m.DefaultModelFilename
	var err error
	if c.VersionPolicy, err = versionPolicy(m.VersionPolicy); err != nil {
		return fileErr(file, "%v", err)
	}
	if err := c.check(); err != nil {
		return fileErr(file, "%v", err)
	}
	ignored, refused, uses := classify(m)
	if len(refused) > 0 {
		return fileErr(file, "servekit cannot serve this model: %s", strings.Join(refused, "; "))
	}
	c.Ignored, c.uses, c.file = ignored, uses, file
	return nil
}

func (c *Config) check() error {
	m := c.model()
	switch c.Traffic {
	case "", TrafficLatest, TrafficManual:
	default:
		return fmt.Errorf("traffic %q: want %q or %q", c.Traffic, TrafficLatest, TrafficManual)
	}
	if f := c.DefaultModelFilename; f != "" {
		if err := checkName(f); err != nil {
			return fmt.Errorf("default_model_filename: %v", err)
		}
	}
	if m.MaxBatchSize < 0 {
		return fmt.Errorf("max_batch_size %d: want 0 (no batching) or more", m.MaxBatchSize)
	}
	if err := checkTensors(m); err != nil {
		return err
	}
	if err := c.checkBatching(); err != nil {
		return err
	}
	if err := checkInstances(m.InstanceGroup); err != nil {
		return err
	}
	if lvl := m.GetOptimization().GetGraph().GetLevel(); lvl < -1 || lvl > 2 {
		return fmt.Errorf("optimization.graph.level %d: want -1 (basic), 0 (all), 1 (extended) or 2 (none)", lvl)
	}
	for k := range m.Parameters {
		if k == "" {
			return errors.New("parameters: an empty key")
		}
	}
	if len(c.Warmup) > maxWarmupSamples {
		return fmt.Errorf("model_warmup: %d samples, at most %d", len(c.Warmup), maxWarmupSamples)
	}
	for i := range c.Warmup {
		if err := c.Warmup[i].check(m.MaxBatchSize); err != nil {
			return fmt.Errorf("model_warmup[%d]%s: %v", i, quoted(c.Warmup[i].Name), err)
		}
	}
	return nil
}

func quoted(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

// checkTensors checks the input and output lists on their own; checkModel
// compares them with the loaded model.
func checkTensors(m *modelconfigpb.ModelConfig) error {
	if len(m.Input) > maxTensors || len(m.Output) > maxTensors {
		return fmt.Errorf("%d inputs and %d outputs, at most %d each", len(m.Input), len(m.Output), maxTensors)
	}
	seen := map[string]bool{}
	check := func(what, name string, dt modelconfigpb.DataType, dims []int64, reshape *modelconfigpb.ModelTensorReshape) error {
		switch {
		case name == "":
			return fmt.Errorf("%s without a name", what)
		case seen[what+name]:
			return fmt.Errorf("%s %q listed twice", what, name)
		}
		seen[what+name] = true
		if _, err := fromTritonType(dt); err != nil {
			return fmt.Errorf("%s %q: data_type: %v", what, name, err)
		}
		if err := checkDims(dims, false); err != nil {
			return fmt.Errorf("%s %q: dims %v: %v", what, name, dims, err)
		}
		if reshape == nil {
			return nil
		}
		if err := checkDims(reshape.Shape, true); err != nil {
			return fmt.Errorf("%s %q: reshape %v: %v", what, name, reshape.Shape, err)
		}
		if err := reshapeFits(dims, reshape.Shape); err != nil {
			return fmt.Errorf("%s %q: reshape %v of dims %v: %v", what, name, reshape.Shape, dims, err)
		}
		return nil
	}
	for _, in := range m.Input {
		if err := check("input", in.Name, in.DataType, in.Dims, in.Reshape); err != nil {
			return err
		}
		if in.Format != modelconfigpb.ModelInput_FORMAT_NONE && len(in.Dims) != 3 {
			return fmt.Errorf("input %q: format %v needs three dims (channels, height, width), not %v", in.Name, in.Format, in.Dims)
		}
	}
	for _, out := range m.Output {
		if err := check("output", out.Name, out.DataType, out.Dims, out.Reshape); err != nil {
			return err
		}
	}
	return nil
}

// checkDims: -1 is any size; Triton wants at least one dim in dims (a
// batch-only tensor is dims [1] with reshape []), none in a reshape.
func checkDims(dims []int64, empty bool) error {
	switch {
	case len(dims) == 0 && !empty:
		return errors.New("empty: give at least one dim (a tensor of the batch dimension alone is dims [1] with reshape { shape: [] })")
	case len(dims) > maxRank:
		return fmt.Errorf("rank %d, at most %d", len(dims), maxRank)
	}
	for _, d := range dims {
		if d < -1 {
			return fmt.Errorf("dim %d: want -1 (any size) or a size", d)
		}
	}
	return nil
}

// reshapeFits checks that a reshape can hold what dims hold: equal element
// counts when both are fixed; otherwise the reshape may leave one dim
// (-1) to be worked out from each request.
func reshapeFits(dims, shape []int64) error {
	dynDims, dynShape := slices.Contains(dims, -1), countDynamic(shape)
	switch {
	case dynShape > 1:
		return errors.New("at most one -1")
	case dynDims && dynShape == 0:
		return errors.New("dims has a -1, so the reshape needs one too")
	case !dynDims && dynShape == 1:
		return errors.New("dims are fixed, so the reshape must be")
	case dynDims:
		return nil
	}
	a, err := serving.NumElements(dims)
	if err != nil {
		return err
	}
	b, err := serving.NumElements(shape)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("%d elements, not %d", b, a)
	}
	return nil
}

func countDynamic(shape []int64) int {
	n := 0
	for _, d := range shape {
		if d < 0 {
			n++
		}
	}
	return n
}

// fromTritonType maps a configuration data type to the protocol's.
func fromTritonType(dt modelconfigpb.DataType) (serving.DataType, error) {
	switch dt {
	case modelconfigpb.DataType_TYPE_INVALID:
		return serving.InvalidType, errors.New("missing (TYPE_FP32, TYPE_INT64, TYPE_STRING, ...)")
	case modelconfigpb.DataType_TYPE_STRING:
		return serving.Bytes, nil
	}
	return serving.ParseDataType(strings.TrimPrefix(dt.String(), "TYPE_"))
}

// VersionPolicy is Triton's version_policy: exactly one of Latest, All and
// Specific, or none for the default, latest 1.
type VersionPolicy struct {
	Latest   *LatestPolicy   `json:"latest,omitempty"`
	All      *AllPolicy      `json:"all,omitempty"`
	Specific *SpecificPolicy `json:"specific,omitempty"`
}

// LatestPolicy serves the NumVersions highest-numbered versions.
type LatestPolicy struct {
	NumVersions int `json:"num_versions"`
}

// AllPolicy serves every version on disk.
type AllPolicy struct{}

// SpecificPolicy serves the listed versions that are on disk.
type SpecificPolicy struct {
	Versions []int64 `json:"versions"`
}

func versionPolicy(p *modelconfigpb.ModelVersionPolicy) (VersionPolicy, error) {
	var vp VersionPolicy
	switch c := p.GetPolicyChoice().(type) {
	case *modelconfigpb.ModelVersionPolicy_Latest_:
		vp.Latest = &LatestPolicy{NumVersions: int(c.Latest.GetNumVersions())}
	case *modelconfigpb.ModelVersionPolicy_All_:
		vp.All = &AllPolicy{}
	case *modelconfigpb.ModelVersionPolicy_Specific_:
		vp.Specific = &SpecificPolicy{Versions: slices.Clone(c.Specific.GetVersions())}
	}
	return vp, vp.check()
}

func (p VersionPolicy) check() error {
	switch {
	case p.Latest != nil && p.Latest.NumVersions < 1:
		return fmt.Errorf("version_policy.latest.num_versions %d: want 1 or more", p.Latest.NumVersions)
	case p.Specific != nil && len(p.Specific.Versions) == 0:
		return errors.New("version_policy.specific.versions is empty")
	case p.Specific != nil && len(p.Specific.Versions) > maxSpecificVersion:
		return fmt.Errorf("version_policy.specific.versions: %d versions, at most %d", len(p.Specific.Versions), maxSpecificVersion)
	}
	if p.Specific != nil {
		for i, v := range p.Specific.Versions {
			if v < 1 {
				return fmt.Errorf("version_policy.specific.versions[%d] %d: versions are positive integers", i, v)
			}
			if slices.Contains(p.Specific.Versions[:i], v) {
				return fmt.Errorf("version_policy.specific.versions: %d listed twice", v)
			}
		}
	}
	return nil
}

// String describes the policy as a person would ("latest 2").
func (p VersionPolicy) String() string {
	switch {
	case p.All != nil:
		return "all"
	case p.Specific != nil:
		return fmt.Sprintf("specific %v", p.Specific.Versions)
	case p.Latest != nil:
		return fmt.Sprintf("latest %d", p.Latest.NumVersions)
	}
	return "latest 1"
}

// IsZero reports whether no policy is set (the default, latest 1).
func (p VersionPolicy) IsZero() bool { return p.Latest == nil && p.All == nil && p.Specific == nil }

// selects returns the versions the policy keeps out of those given
// (ascending), in ascending order.
func (p VersionPolicy) selects(versions []int64) []int64 {
	switch {
	case p.All != nil:
		return versions
	case p.Specific != nil:
		return slices.DeleteFunc(slices.Clone(versions), func(v int64) bool { return !slices.Contains(p.Specific.Versions, v) })
	}
	n := 1
	if p.Latest != nil {
		n = p.Latest.NumVersions
	}
	return versions[max(0, len(versions)-n):]
}

// Traffic is how unversioned requests reach the versions of a model.
type Traffic string

const (
	// TrafficLatest (the default, as in Triton and TF Serving) sends every
	// unversioned request to the highest-numbered version that is ready: a
	// new version takes all of it once loaded and warmed (an atomic
	// Router.Switch), and a version that fails to load or is removed hands
	// it back to the next highest.
	TrafficLatest Traffic = "latest"
	// TrafficManual leaves the weights to the operator: a new version joins
	// the router with weight 0 (reachable when pinned, for a canary or a
	// rollout plan to promote). The repository sets weights only when no
	// ready version has any, such as at start-up or after the version that
	// carried the traffic was removed: the highest ready version then takes
	// 100 %, so a model is never left unreachable by default.
	TrafficManual Traffic = "manual"
)

func (c *Config) traffic() Traffic {
	if c.Traffic == "" {
		return TrafficLatest
	}
	return c.Traffic
}
