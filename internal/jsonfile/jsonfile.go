// Package jsonfile reads the hand-editable JSON files the monitors keep
// beside a model (drift_profile.json, quality_reference.json): one object,
// unknown fields refused (a misspelt key is an error, not a default),
// nothing after it, and validated before anyone uses it.
package jsonfile

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Validator is a decoded value that checks its own consistency.
type Validator[T any] interface {
	*T
	Validate() error
}

// Decode reads one T from r and validates it. Errors start with pkg and
// name the file's noun ("drift: decode profile: …").
func Decode[T any, P Validator[T]](r io.Reader, pkg, noun string) (*T, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: decode %s: %w", pkg, noun, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: decode %s: data after the %s object", pkg, noun, noun)
	}
	if err := P(&v).Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// Read decodes and validates the file at path; its errors name the path.
func Read[T any, P Validator[T]](path, pkg, noun string) (*T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	defer f.Close()
	v, err := Decode[T, P](f, pkg, noun)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return v, nil
}
