package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving/modelconfigpb"
)

// parseJSON reads config.json: servekit's own fields are taken out, and the
// rest is Triton's ModelConfig, read by protojson (which knows every field
// of the schema, in either spelling, and refuses anything else).
//
// Three parts may be in either form, so the config.json files written
// before servekit read Triton's whole schema keep working:
//   - parameters: Triton's {"key": {"string_value": "2"}} or a plain JSON
//     value {"key": 2}, per key;
//   - model_warmup: each sample in Triton's form (TYPE_FP32,
//     input_data_file) or servekit's (FP32, inline "data", "request_file");
//     the two mean the same where they overlap;
//   - "traffic", servekit's alone.
func parseJSON(b []byte) (*Config, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&top); err != nil {
		return nil, errors.New(jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the top-level object")
	}
	if top == nil {
		return nil, errors.New("want a JSON object")
	}
	c := &Config{Model: &modelconfigpb.ModelConfig{}}
	if raw, ok := take(top, "traffic"); ok {
		if err := json.Unmarshal(raw, &c.Traffic); err != nil {
			return nil, fmt.Errorf("traffic: %s", jsonError(err))
		}
	}
	var params map[string]json.RawMessage
	if raw, ok := take(top, "parameters"); ok {
		if err := json.Unmarshal(raw, &params); err != nil || params == nil {
			return nil, errors.New("parameters must be a JSON object")
		}
	}
	warm, hasWarm := take(top, "model_warmup", "modelWarmup")
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	if err := protojson.Unmarshal(rest, c.Model); err != nil {
		return nil, errors.New(protoJSONError(err))
	}
	if params != nil {
		if err := c.jsonParameters(params); err != nil {
			return nil, err
		}
	}
	if hasWarm {
		if err := c.jsonWarmup(warm); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// take removes the first of names present in m and returns its value.
func take(m map[string]json.RawMessage, names ...string) (json.RawMessage, bool) {
	for _, n := range names {
		if v, ok := m[n]; ok {
			delete(m, n)
			return v, true
		}
	}
	return nil, false
}

// jsonParameters fills both forms: Model.Parameters as Triton's strings
// (a JSON value's text, such as "2" or "all"), Parameters as the JSON
// object the LoadFunc decodes.
func (c *Config) jsonParameters(params map[string]json.RawMessage) error {
	c.Model.Parameters = make(map[string]*modelconfigpb.ModelParameter, len(params))
	obj := make(map[string]json.RawMessage, len(params))
	for k, raw := range params {
		s, triton := tritonParameter(raw)
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return fmt.Errorf("parameters.%s: %v", k, err)
		}
		switch {
		case triton:
			obj[k], _ = json.Marshal(s)
		default:
			obj[k] = compact.Bytes()
			if err := json.Unmarshal(raw, &s); err != nil {
				s = compact.String() // a number, bool or object: its JSON text
			}
		}
		c.Model.Parameters[k] = &modelconfigpb.ModelParameter{StringValue: s}
	}
	c.Parameters, _ = json.Marshal(obj) // valid values, sorted keys
	return nil
}

// tritonParameter recognises Triton's {"string_value": "..."}.
func tritonParameter(raw json.RawMessage) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
		return "", false
	}
	v, ok := m["string_value"]
	if !ok {
		v, ok = m["stringValue"]
	}
	var s string
	if !ok || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonWarmup reads each sample in Triton's form if it is one (protojson
// accepts it), else in servekit's; an error is servekit's form's, which
// names the field.
func (c *Config) jsonWarmup(raw json.RawMessage) error {
	var samples []json.RawMessage
	if err := json.Unmarshal(raw, &samples); err != nil {
		return fmt.Errorf("model_warmup: want a list of samples: %s", jsonError(err))
	}
	if len(samples) > maxWarmupSamples {
		return fmt.Errorf("model_warmup: %d samples, at most %d", len(samples), maxWarmupSamples)
	}
	for i, s := range samples {
		t := &modelconfigpb.ModelWarmup{}
		if protojson.Unmarshal(s, t) == nil {
			c.Model.ModelWarmup = append(c.Model.ModelWarmup, t)
			c.Warmup = append(c.Warmup, warmupFromTriton(t))
			continue
		}
		var w WarmupSample
		dec := json.NewDecoder(bytes.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&w); err != nil {
			return fmt.Errorf("model_warmup[%d]: %s", i, jsonError(err))
		}
		c.Warmup = append(c.Warmup, w)
	}
	return nil
}

// jsonError words encoding/json's errors for a person editing the file.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: %s does not fit a %s", te.Field, te.Value, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// protojson's positions count in the document parseJSON rebuilt, not the
// user's file, so they would mislead.
var protoPosition = regexp.MustCompile(`\(line \d+:\d+\):\s*`)

func protoJSONError(err error) string {
	return protoPosition.ReplaceAllString(protoMessage(err), "")
}

// protoMessage drops the "proto:" prefix, which the protobuf module writes
// with a space or, at random, a no-break space.
func protoMessage(err error) string {
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, "proto:"); ok {
		return strings.TrimLeft(rest, " \u00a0")
	}
	return s
}

// MarshalJSON writes the configuration as a config.json that ParseConfig
// reads back to the same Config: Triton's fields by their proto names,
// with servekit's traffic, parameters and warm-up samples beside them.
func (c *Config) MarshalJSON() ([]byte, error) {
	m := proto.Clone(c.model()).(*modelconfigpb.ModelConfig)
	m.Parameters, m.ModelWarmup = nil, nil // written from Parameters and Warmup, which hold both forms
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if c.Traffic != "" {
		top["traffic"], _ = json.Marshal(c.Traffic)
	}
	if len(bytes.TrimSpace(c.Parameters)) > 0 {
		top["parameters"] = c.Parameters
	}
	if len(c.Warmup) > 0 {
		if top["model_warmup"], err = json.Marshal(c.Warmup); err != nil {
			return nil, err
		}
	}
	return json.Marshal(top)
}
