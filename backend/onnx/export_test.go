package onnx

// Fingerprint exposes the content fingerprint to the black-box tests.
var Fingerprint = fingerprint
