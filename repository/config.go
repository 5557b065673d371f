package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/servekit/servekit/serving"
)

// ConfigFile is the name of the optional per-model configuration file,
// <root>/<model>/config.json.
const ConfigFile = "config.json"

// Limits on what a config file may ask for, so a typo cannot make the
// server allocate gigabytes or spin for hours at start-up.
const (
	maxConfigBytes     = 1 << 20 // config.json
	maxRequestBytes    = 64 << 20
	maxWarmupSamples   = 64
	maxWarmupCount     = 1000
	maxWarmupElements  = 1 << 24 // per input: 64 MiB of FP32
	maxSpecificVersion = 1024    // versions listed in a "specific" policy
)

// Config is a model's config.json. Every field is optional; the zero Config
// is Triton's default: serve the latest version, send it all unversioned
// traffic, no warm-up. Field names follow Triton's model configuration
// (version_policy, model_warmup, default_model_filename, parameters) in its
// JSON form, so a Triton user reads it without a manual.
type Config struct {
	// VersionPolicy picks the versions on disk that are served.
	VersionPolicy VersionPolicy `json:"version_policy,omitzero"`
	// Traffic says how unversioned requests reach new versions.
	Traffic Traffic `json:"traffic,omitempty"`
	// DefaultModelFilename is the model file inside each version directory
	// (a plain file name); empty means the repository's (WithModelFile,
	// default "model.onnx").
	DefaultModelFilename string `json:"default_model_filename,omitempty"`
	// Parameters are handed to the LoadFunc unread (Version.Parameters): the
	// backend's own options, such as threads. Any JSON object.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Warmup lists the samples each version runs before it gets traffic.
	// None by default: a version is not warmed unless configured.
	Warmup []WarmupSample `json:"model_warmup,omitempty"`
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

// WarmupSample is one entry of Triton's model_warmup: a request built from
// Inputs, or read from RequestFile, sent Count times through Predict before
// the version gets traffic. Exactly one of Inputs and RequestFile is set.
type WarmupSample struct {
	// Name appears in errors and logs.
	Name string `json:"name,omitempty"`
	// Count is how many times the request runs; 0 means 1.
	Count int `json:"count,omitempty"`
	// Inputs, by input name.
	Inputs map[string]WarmupInput `json:"inputs,omitempty"`
	// RequestFile is an Open Inference Protocol (V2) JSON infer request,
	// {"inputs": [...]}, as a client would POST it; its path is relative to
	// the model's directory and may not leave it.
	RequestFile string `json:"request_file,omitempty"`
}

// WarmupInput is one input of a warm-up sample: a datatype, a full shape
// (dims include the batch dimension; [] is a scalar) and exactly one of
// ZeroData, RandomData and Data.
type WarmupInput struct {
	// DataType is a protocol name ("FP32", "INT64") or Triton's spelling
	// ("TYPE_FP32").
	DataType string `json:"data_type"`
	// Dims is the shape. Required: dynamic dims need a real size, which is
	// exactly what the old zeros-with-ones warm-up got wrong.
	Dims []int64 `json:"dims"`
	// ZeroData fills the tensor with zeros (empty strings for BYTES).
	ZeroData bool `json:"zero_data,omitempty"`
	// RandomData fills it with reproducible pseudo-random values: floats in
	// [-1, 1), integers in [0, 100), random bools, 8-letter strings.
	RandomData bool `json:"random_data,omitempty"`
	// Data gives the values, flat or nested, as in a V2 request's "data"
	// (e.g. [16000] for a sample-rate scalar).
	Data json.RawMessage `json:"data,omitempty"`
}

// ParseConfig decodes and checks a config.json. Unknown fields are errors,
// so a misspelt option fails loudly instead of being ignored; so are
// contradictions (two version policies, zero_data with data) and requests
// beyond the limits. Errors are InvalidArgument and name the field.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > maxConfigBytes {
		return nil, configErr("%d bytes, more than the %d allowed", len(b), maxConfigBytes)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, configErr("%s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, configErr("data after the top-level object")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func configErr(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "repository: "+ConfigFile+": "+format, args...)
}

// jsonError words encoding/json's errors for a person editing the file.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: %s does not fit a %s", te.Field, te.Value, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func (c *Config) check() error {
	if err := c.VersionPolicy.check(); err != nil {
		return err
	}
	switch c.Traffic {
	case "", TrafficLatest, TrafficManual:
	default:
		return configErr("traffic %q: want %q or %q", c.Traffic, TrafficLatest, TrafficManual)
	}
	if f := c.DefaultModelFilename; f != "" {
		if err := checkName(f); err != nil {
			return configErr("default_model_filename: %v", err)
		}
	}
	if p := bytes.TrimSpace(c.Parameters); len(p) > 0 && p[0] != '{' {
		return configErr("parameters must be a JSON object")
	}
	if len(c.Warmup) > maxWarmupSamples {
		return configErr("model_warmup: %d samples, at most %d", len(c.Warmup), maxWarmupSamples)
	}
	for i := range c.Warmup {
		if err := c.Warmup[i].check(); err != nil {
			return configErr("model_warmup[%d]%s: %v", i, quoted(c.Warmup[i].Name), err)
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

func (p VersionPolicy) check() error {
	n := 0
	for _, set := range []bool{p.Latest != nil, p.All != nil, p.Specific != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return configErr("version_policy: set one of latest, all and specific")
	case p.Latest != nil && p.Latest.NumVersions < 1:
		return configErr("version_policy.latest.num_versions %d: want 1 or more", p.Latest.NumVersions)
	case p.Specific != nil && len(p.Specific.Versions) == 0:
		return configErr("version_policy.specific.versions is empty")
	case p.Specific != nil && len(p.Specific.Versions) > maxSpecificVersion:
		return configErr("version_policy.specific.versions: %d versions, at most %d", len(p.Specific.Versions), maxSpecificVersion)
	}
	if p.Specific != nil {
		for i, v := range p.Specific.Versions {
			if v < 1 {
				return configErr("version_policy.specific.versions[%d] %d: versions are positive integers", i, v)
			}
			if slices.Contains(p.Specific.Versions[:i], v) {
				return configErr("version_policy.specific.versions: %d listed twice", v)
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

// IsZero reports whether no policy is set (the default, latest 1); it lets
// encoding/json omit an unset policy.
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

func (c *Config) traffic() Traffic {
	if c.Traffic == "" {
		return TrafficLatest
	}
	return c.Traffic
}

func (s WarmupSample) check() error {
	if s.Count < 0 || s.Count > maxWarmupCount {
		return fmt.Errorf("count %d: want 0 to %d", s.Count, maxWarmupCount)
	}
	switch {
	case len(s.Inputs) == 0 && s.RequestFile == "":
		return errors.New("set inputs or request_file")
	case len(s.Inputs) > 0 && s.RequestFile != "":
		return errors.New("set inputs or request_file, not both")
	case s.RequestFile != "":
		if err := checkRelPath(s.RequestFile); err != nil {
			return fmt.Errorf("request_file: %v", err)
		}
		return nil
	}
	for _, name := range sortedKeys(s.Inputs) {
		if _, err := s.Inputs[name].check(name); err != nil {
			return fmt.Errorf("input %q: %w", name, err)
		}
	}
	return nil
}
