// Package overhead holds benchmarks only: the cost of servekit's HTTP and
// JSON layer per request over an in-process Predict, on the real fraud model
// (testdata/models/fraud.onnx through ONNX Runtime).
//
//	go test -run '^$' -bench . -benchmem ./bench/overhead
package overhead
