// Package modelconfigpb holds Triton Inference Server's model
// configuration, the ModelConfig message of a model repository's
// config.pbtxt, as Go types generated from servekit's own
// model_config.proto. Message, field and enum names and numbers are
// Triton's, so the standard protobuf encodings read and write what Triton
// does:
//
//	var cfg modelconfigpb.ModelConfig
//	prototext.Unmarshal(configPbtxt, &cfg) // config.pbtxt
//	protojson.Unmarshal(configJSON, &cfg)  // the JSON form, either field spelling
//
// Reach for package repository first: it reads these files, checks them,
// says which fields servekit applies and which it ignores, and serves the
// models. This package is the shared vocabulary underneath, so that a
// transport can serve a model's configuration (Triton's model
// configuration extension) without importing the repository. Triton's
// endpoint prints fields by their proto names and 64-bit integers as JSON
// numbers; protojson prints the latter as strings, which a server must
// convert to answer exactly as Triton does.
//
// It lives in serving/ rather than beside one transport because the
// repository reads it and every transport may serve it. The messages are
// plain protobuf values: not safe for concurrent mutation, safe to read
// from many goroutines once built.
package modelconfigpb
