// Package onnxbuild writes and reads the few ONNX protobuf messages that
// servekit's tests, benchmarks and model generator need, without generated
// protobuf code.
//
// Reach for [NewGraph] to describe a graph node by node and [Graph.Model] to
// serialise it, or for the ready-made models: [MLP] and [RandomMLP] for
// dense networks of any size, [ConvNet] and [RandomConvNetSpec] for small
// image classifiers (Conv, Relu, MaxPool, GlobalAveragePool), each in FP32,
// FP16 or FP16 behind FP32 casts ([Precision]) and with a Go evaluation to
// check a runtime against, [QuantizeMLP] and [QuantizeConvNet] for their
// INT8 (QDQ) versions, quantized here with activation ranges from a
// calibration batch (quant.go says how), [FraudMLP] for the project's demo model,
// [Identity] for one element type end to end, [MultiIO] for several inputs
// and outputs. [DecodeTensor] and [EncodeTensor] read and write the
// TensorProto files of ONNX's backend test suite, [DecodeModelIO] lists
// a model's inputs and outputs so a test can tell which models it can feed,
// and [Summarize] counts a graph's operators and initializers, e.g. in the
// optimised model ONNX Runtime writes, to see which kernels it runs.
//
// The messages are written with protowire against the field numbers of
// onnx.proto (ONNX 1.12, IR version 8). Generated types would pull a
// protoc step and thousands of lines into the module for a handful of
// fields; the hand-written encoder stays readable and its output is
// byte-for-byte deterministic, which the committed models rely on.
//
// The package is internal: it checks only the mistakes a test author makes
// (duplicate names, a node reading a value nobody wrote, data that does not
// fit its shape), not the full ONNX checker rules. ONNX Runtime stays the
// judge of whether an operator and its attributes are valid.
//
// Everything here is a pure function or a builder owned by one goroutine;
// a [Graph] is not safe for concurrent use.
package onnxbuild
