package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// LoadFunc loads one version of a model from disk. It is how the repository
// stays independent of any backend: the caller passes onnx.Load wrapped in a
// few lines (see the package example), or anything else that turns a file
// into a Predictor. It may return a chain of middleware around the model
// (a per-version cache or batcher belongs below the router); the repository
// owns what it returns and closes it (serving.Close) once the version is
// replaced or unloaded and its in-flight requests have finished.
//
// ctx ends when the load timeout passes or the repository closes: a
// LoadFunc must return soon after. It may be called for different versions
// at once. A panic is recovered and fails that version's load.
type LoadFunc func(ctx context.Context, v Version) (serving.Predictor, error)

// Version is what a LoadFunc needs to load one version: the names, the
// resolved paths, and the model's configuration.
type Version struct {
	Model   string
	Version string
	// Path is the model file, ModelDir/Version/<default_model_filename>;
	// Dir is the version directory and ModelDir the model's. All are
	// absolute with symlinks resolved, and all inside the repository.
	Path, Dir, ModelDir string
	// Parameters is the configuration's "parameters" as a JSON object, or
	// nil (Config.Parameters); read it with DecodeParameters.
	Parameters json.RawMessage
	// Config is the model's configuration, never nil for a version the
	// repository loads: the LoadFunc reads the fields it applies from it
	// (Batching, ResponseCache, Instances, GraphOptimization; see
	// WithLoaderFields). Shared by the model's versions: read-only.
	Config *Config
	// Fingerprint identifies the files loaded and the config they were
	// loaded with; it changes when any of them does.
	Fingerprint string
}

// DecodeParameters decodes Parameters into dst (a pointer to a struct
// with json tags), refusing unknown keys so a misspelt option fails the
// load with a reason instead of being ignored. Triton's parameters are
// strings; a string value that does not fit its field is read as the JSON
// number or boolean it spells ("2" fills an int, "1" or "true" a bool).
// Without parameters it leaves dst alone.
func (v Version) DecodeParameters(dst any) error {
	if len(bytes.TrimSpace(v.Parameters)) == 0 {
		return nil
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(v.Parameters, &params); err != nil {
		return v.paramErr(err)
	}
	for _, k := range sortedKeys(params) {
		raw := params[k]
		err := decodeParam(dst, k, raw)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			for _, alt := range paramSpellings(raw) {
				if decodeParam(dst, k, alt) == nil {
					err = nil
					break
				}
			}
		}
		if err != nil {
			return v.paramErr(err)
		}
	}
	return nil
}

func (v Version) paramErr(err error) error {
	return serving.Errorf(serving.InvalidArgument, "repository: model %q: parameters: %s", v.Model, jsonError(err))
}

// decodeParam decodes {key: raw} into dst, so one key fills one field.
func decodeParam(dst any, key string, raw json.RawMessage) error {
	obj, _ := json.Marshal(map[string]json.RawMessage{key: raw})
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// paramSpellings are the other readings of a string value: the JSON
// literal it spells, and "0"/"1" as booleans (Triton's backends write
// flags that way).
func paramSpellings(raw json.RawMessage) []json.RawMessage {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	var out []json.RawMessage
	if json.Valid([]byte(s)) && !strings.HasPrefix(strings.TrimSpace(s), "\"") {
		out = append(out, json.RawMessage(s))
	}
	switch strings.TrimSpace(s) {
	case "0":
		out = append(out, json.RawMessage("false"))
	case "1":
		out = append(out, json.RawMessage("true"))
	}
	return out
}

// State is where a version is in its life, as in Triton's repository
// index.
type State string

// The states. A version being hot-reloaded stays StateReady: its old
// Predictor serves until the new one is ready.
const (
	StateLoading   State = "loading"   // loading or warming up; no traffic yet
	StateReady     State = "ready"     // serving
	StateFailed    State = "failed"    // the load or warm-up failed: Reason says why
	StateUnloading State = "unloading" // draining its in-flight requests
)

// Status is the repository's index: every model it manages, with its
// versions.
type Status struct {
	Root   string        `json:"root"`
	Models []ModelStatus `json:"models"`
}

// ModelStatus describes one model. Reason reports a problem with the model
// as a whole (a configuration that does not parse, or that strict mode
// refuses: what is loaded keeps serving, and nothing new is loaded until
// it is fixed). Ignored lists the configured fields servekit does not
// implement, as "field: why".
type ModelStatus struct {
	Name     string          `json:"name"`
	Policy   string          `json:"version_policy"`
	Traffic  Traffic         `json:"traffic"`
	Reason   string          `json:"reason,omitempty"`
	Ignored  []string        `json:"ignored,omitempty"`
	Versions []VersionStatus `json:"versions"`
}

// VersionStatus describes one version. For a ready version Reason is empty,
// or says why its last reload failed (the previous files keep serving).
type VersionStatus struct {
	Version     string    `json:"version"`
	State       State     `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	LoadedAt    time.Time `json:"loaded_at,omitzero"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

// placeholder stands in the router for a version that is loading or
// failed: not ready, so routed traffic avoids it, and a request pinned to it
// gets Unavailable with the reason. It lets /versions/{v}/ready answer 503
// instead of 404 while the version is on its way.
type placeholder struct {
	md     serving.Metadata
	err    error
	closed atomic.Bool
}

var (
	_ serving.Predictor = (*placeholder)(nil)
	_ serving.Readier   = (*placeholder)(nil)
	_ serving.Describer = (*placeholder)(nil)
	_ io.Closer         = (*placeholder)(nil)
)

func loadingPlaceholder(model, version string) *placeholder {
	return &placeholder{
		md:  serving.Metadata{Name: model, Version: version},
		err: serving.Errorf(serving.Unavailable, "repository: model %q version %s is loading", model, version),
	}
}

func failedPlaceholder(model, version string, cause error) *placeholder {
	return &placeholder{
		md:  serving.Metadata{Name: model, Version: version},
		err: serving.Errorf(serving.Unavailable, "repository: model %q version %s failed to load: %v", model, version, cause),
	}
}

func (p *placeholder) Predict(ctx context.Context, _ *serving.Request) (*serving.Response, error) {
	if p.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "repository: predict"); err != nil {
		return nil, err
	}
	return nil, p.err
}

func (p *placeholder) Ready() bool { return false }

func (p *placeholder) Metadata() serving.Metadata { return p.md }

func (p *placeholder) Close() error {
	p.closed.Store(true)
	return nil
}

// prepare loads v, checks it against the configuration's inputs and
// outputs and warms it up, all within timeout, turning a panic or a nil
// Predictor into an error. On error nothing is left open.
func prepare(ctx context.Context, load LoadFunc, v Version, timeout time.Duration) (serving.Predictor, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	p, err := callLoad(ctx, load, v)
	if err != nil {
		return nil, err
	}
	if p, err = conform(p, v.Config); err != nil {
		return nil, errors.Join(err, serving.Close(p))
	}
	if err := warmup(ctx, p, v, v.Config); err != nil {
		return nil, errors.Join(err, serving.Close(p))
	}
	return p, nil
}

func callLoad(ctx context.Context, load LoadFunc, v Version) (p serving.Predictor, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, serving.Errorf(serving.Internal, "load panicked: %v", r)
		}
	}()
	p, err = load(ctx, v)
	switch {
	case err != nil && p != nil:
		return nil, errors.Join(err, serving.Close(p))
	case err != nil:
		return nil, err
	case p == nil:
		return nil, serving.Errorf(serving.Internal, "the loader returned no Predictor and no error")
	}
	return p, nil
}
