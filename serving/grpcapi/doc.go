// Package grpcapi serves servekit models over the Open Inference Protocol's
// gRPC API (KServe V2 / Triton's inference.GRPCInferenceService), by two
// servers of one set of RPCs: New, an http.Handler through
// connectrpc.com/connect, which speaks gRPC, gRPC-Web and Connect on the
// same listener as the REST API; and grpcserver.New (the subpackage
// grpcserver), grpc-go's own server for a port of its own (Triton's 8001),
// the fast path, with the standard health service and server reflection.
//
// Reach for New first. It serves the models of an oip.Server, the
// transport-neutral core the REST transport serves too, or of an
// *httpapi.Handler (its Server): models are registered once and served
// over both protocols with the same version resolution, configuration and
// statistics:
//
//	rest := httpapi.New()
//	rest.Handle("fraud", model)
//	srv := &http.Server{
//		Handler:   grpcapi.New(rest, grpcapi.WithFallback(rest)),
//		Protocols: grpcapi.Protocols(), // HTTP/1.1 + h2c: gRPC needs HTTP/2
//	}
//
// or, in a mux: mux.Handle(grpcapi.Path, grpcapi.New(rest)). A Handler is
// safe for concurrent use, starts no goroutines and holds nothing to close.
//
// # Two servers
//
// Where gRPC clients are what matters (Triton's and KServe's clients,
// perf_analyzer, Kubernetes' gRPC probes, grpcurl), add grpcserver.New on
// a port of its own, as Triton serves gRPC on 8001 beside HTTP on 8000:
//
//	import "net"
//
//	rest := httpapi.New() // the same model table as the REST port's
//	drain := make(chan struct{})
//	gs := grpcserver.New(rest, grpcserver.WithDrain(drain))
//	ln, err := net.Listen("tcp", ":8001")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go gs.Serve(ln)
//	// on SIGTERM: close(drain), wait the drain delay, then
//	err = grpcserver.Shutdown(ctx, gs)
//
// Its package doc says what it serves besides (health per model, server
// reflection). Both servers call the same functions for every RPC (rpc.go,
// infer.go; grpcserver reaches them through internal/rpctable) and answer
// alike: the tests run every RPC test against both. This package's
// options apply to both, but WithFallback and WithHandlerOptions, which
// are Connect's; grpcserver adds grpc-go's (WithServerOptions, WithDrain).
//
// grpc-go's server is a package of its own so that a program serving only
// this Handler links none of grpc-go: nothing here imports it (go list
// -deps shows no google.golang.org/grpc, and a test holds it so). A
// REST-and-Connect program on this package is 10.3 MB stripped (amd64),
// against 15.6 MB when the handler and grpc-go's server were one package
// (11.3 MB with grpc-go's grpcnotrace tag, which such a program no longer
// needs). A program that imports grpcserver links grpc-go: build it with
// -tags grpcnotrace, which keeps golang.org/x/net/trace (whose
// html/template makes the linker keep every method of every type) out;
// the servekit command is 28.9 MB stripped without it, 18.7 MB with it
// (its Dockerfile builds so). A program that wants no gRPC at all (edge
// builds) leaves both packages out, as servekit's servekit_nogrpc tag
// does.
//
// Plaintext HTTP/2 comes from the standard library (http.Server.Protocols
// with SetUnencryptedHTTP2, Go 1.24+), not golang.org/x/net/http2/h2c: gRPC
// clients (grpc-go, @grpc/grpc-js, grpcurl -plaintext) open h2c with prior
// knowledge, which the standard server accepts, and the tests run both
// against it. (h2c's HTTP/1.1 Upgrade dance, which only curl --http2 uses,
// is not supported.)
//
// # RPCs
//
// ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and
// ModelInfer as the published grpc_predict_v2.proto defines them, and the
// RPCs Triton's inference.GRPCInferenceService adds to the same service,
// at Triton's names, messages and field numbers, so that Triton's clients
// (tritonclient.grpc, perf_analyzer -i grpc) and KServe's both work (the
// project's .proto is in proto/, importing Triton's ModelConfig from
// serving/modelconfigpb; the generated Go types in inferencepb, the
// Connect client and handler in inferencepb/inferencepbconnect):
//
//	ModelConfig             the configuration the model is served with (oip.Server.Config)
//	ModelStatistics         Triton's statistics extension (oip.Server.Statistics)
//	RepositoryIndex         the model repository's index   } admin: Unimplemented unless the
//	RepositoryModelLoad     load a model                  } Server enables repository control,
//	RepositoryModelUnload   unload a model                } then behind its authoriser
//	SystemSharedMemory*,    no regions: Status lists none, Unregister of all succeeds,
//	CudaSharedMemory*       Register is Unimplemented (tensors travel in the messages)
//	TraceSetting            Unimplemented: traces are OpenTelemetry's, set up in the program
//	LogSettings             Unimplemented: logs are log/slog's, set up in the program
//
// Shared memory is not cheap to honour (the server would map memory its
// clients name) and nothing in servekit needs it; answering its status
// and unregister truthfully lets a client that cleans up first (as
// perf_analyzer's shared-memory modes do) fail at the register, with a
// message saying what to send instead. The repository RPCs' authoriser
// sees the call's HTTP request, metadata as headers (Bearer tokens in
// "authorization"); without credentials they are Unauthenticated, refused
// PermissionDenied; repository_name must be empty (one repository).
// ModelReady and ModelMetadata of an unknown model or version are
// NotFound, as REST's are 404 and KServe's gRPC server answers (Triton's
// ModelReady answers ready false).
//
// The RPCs are written against the generated messages only (rpc.go,
// infer.go): the Connect handler (service.go) and grpc-go's server
// (grpcserver, through table.go) adapt them.
//
// Streaming: ModelStreamInfer, Triton's bidirectional RPC, is served: the
// requests of one stream are answered in order, one at a time, each as
// ModelInfer would; a failed request is answered with error_message and the
// stream goes on. Its answers are in order because clients (Triton's
// stream_infer) match answers to requests by order or id; a client wanting
// concurrency opens several streams or uses unary calls.
//
// # Tensors
//
// Inputs come in each tensor's typed contents or in raw_input_contents (one
// entry per input, in order; never both): every datatype, BOOL, UINT8–64,
// INT8–64, FP16, BF16, FP32, FP64 and BYTES. FP16 and BF16 exist only raw;
// BYTES raw is each element after a 4-byte little-endian length. INT8/16 and
// UINT8/16 travel widened in int_contents / uint_contents and are
// range-checked. Typed contents are used in place, without a copy.
//
// Outputs come back raw (raw_output_contents) by default, as Triton answers:
// it is what both Triton's and KServe's clients read, costs no per-element
// encoding, and is the only form FP16 and BF16 have. WithOutputContents picks
// TypedOutputs, or OutputsAsRequested (raw when the request was raw, as
// KServe's Python server answers). Requested outputs select and order the
// outputs; an unknown one is NotFound.
//
// # Parameters, versions, routing keys
//
// Request parameters become serving.Request.Params (bool, int64, string,
// double; Triton's uint64 as int64): "timeout" (µs), "priority" and
// "cache_bypass" act as over REST. Request.Version is the version resolved
// from model_version, or from the x-model-version metadata when it is empty
// (WithVersionHeader); Request.Key is the "routing_key" parameter, else the
// x-routing-key metadata (WithRoutingKeyHeader), as httpapi reads them.
//
// A requested output with the parameter "classification" (an int64_param,
// as Triton's client sends it) is answered with its top k classes per row,
// BYTES "value:index:label", as over REST (serving.ClassifyOutputs). The
// protocol's TensorMetadata has no field for an output's class labels, so
// ModelMetadata does not carry them (REST's model metadata does); the
// classification answers do.
//
// # Limits, deadlines and telemetry
//
// WithMaxMessageBytes (default 4 MiB, grpc-go's) bounds a message: a larger
// one is ResourceExhausted before it is read (gRPC's answer to an oversized
// message; REST's is 413), and a compressed one is cut off as it inflates
// past the limit (Connect would otherwise inflate the rest to report its
// size: a gigabyte from a megabyte of gzip). WithMaxElements (per input
// tensor, default 1<<24), WithMaxInputs and WithMaxOutputs (1024 each) and
// WithMaxParameters (256, all maps of a request together) are httpapi's
// limits: InvalidArgument before anything is allocated for what is over.
//
// Decoding keeps serving's cost budget (serving.DecodeBudget, 16 × the
// message + 1 MiB). proto.Unmarshal and protojson grow repeated fields one
// element at a time and cost 40 to 80 bytes of memory per byte of a message
// of small elements or empty inputs, so the handler's codecs decode
// ModelInferRequest by hand: the binary one (wire.go) counts every repeated
// field on the wire before it makes the slice, the JSON one (jsoncodec.go)
// counts every array before it reads it; both enforce the caps while
// counting. They make the messages proto.Unmarshal and protojson make
// (differential tests and fuzz targets hold them to it); other messages go
// to those. A codec or gzip passed through WithHandlerOptions replaces these,
// and the budget with them. Input names given twice and outputs asked for
// twice are InvalidArgument. The deadline is the earliest of the call's gRPC
// deadline (grpc-timeout), the "timeout" parameter and WithMaxTimeout. W3C
// trace context (traceparent metadata) is extracted with
// otel.GetTextMapPropagator(), so the servekit.predict span of
// telemetry.Middleware is the child of the client's span.
//
// # Errors
//
// Errors are gRPC statuses mapped from serving's codes, which carry gRPC's
// names: InvalidArgument, NotFound, ResourceExhausted, Unavailable,
// DeadlineExceeded, Canceled, Unimplemented, Unauthenticated,
// PermissionDenied, and Internal for anything else (Code). ResourceExhausted and Unavailable carry a google.rpc.RetryInfo
// detail and retry-after metadata (whole seconds) from serving.RetryAfterOf,
// else WithRetryAfter. A panic below the handler is an Internal error for
// the client and is logged with its stack through slog.Default.
//
// # Performance
//
// grpc-go's server is the fast path: on the demo model (1×8 FP32) with 64
// clients on one connection, servekit serve on one core, it costs 19–21 µs
// of server CPU a request against V2 JSON over HTTP/1.1's 34–36 µs, and
// answered 1.9–2.3–2.7× REST's requests in the same rounds; 2.4× at 256
// rows, where the Connect handler answers 0.4–0.5× REST's on the demo
// request (bench/README.md, make bench-grpc, "Closing the 1-row gap"). The Connect handler's cost is net/http's HTTP/2 server (a
// goroutine per stream, frame handling) and connect's unary handler, not
// this package's decoding; it stays for browsers (gRPC-Web, Connect) and
// single-port deployments.
//
// How grpcserver keeps its calls cheap (raw contents read in place,
// stream workers, HTTP/2 settings) is in its package doc. Garbage
// collection is the process's: servekit serve sets a 16 MiB heap floor
// (--gc-min-heap); a program of its own can set GOGC or GOMEMLIMIT.
//
// # Regenerating the code
//
// `make proto` regenerates inferencepb byte for byte: Debian's protoc
// (protobuf-compiler 3.21.12) with protoc-gen-go v1.36.12 and
// protoc-gen-connect-go v1.21.1 run through `go run`. CI does not need
// protoc: the generated code is committed.
package grpcapi
