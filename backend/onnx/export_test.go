package onnx

import "github.com/servekit/servekit/serving"

// Fingerprint exposes the content fingerprint to the black-box tests.
var Fingerprint = fingerprint

// InputsValid exposes the fast input check, to test it against
// Metadata.Validate.
func (m *Model) InputsValid(req *serving.Request) bool { return m.inputsValid(req) }
