// Command servekit is servekit as a server, for those who want one rather
// than a library: it serves a Triton-style model repository over the Open
// Inference Protocol (KServe V2), REST and gRPC, with /metrics, admission
// control, micro-batching and response caching as each model's
// config.pbtxt says.
//
//	go install github.com/servekit/servekit/cmd/servekit@latest
//	servekit serve --model-repository models/          # REST :8000, gRPC :8001, metrics :8002
//	servekit infer --model-name fraud --input x.npy     # one request, the answer on stdout
//	servekit version                                   # module, Go and ONNX Runtime versions
//
// # Flags and the environment
//
// Flag names and meanings follow tritonserver's where it has one
// (--model-repository, --http-port, --grpc-port, --metrics-port,
// --model-control-mode, --repository-poll-secs, --load-model,
// --exit-timeout-secs, --exit-on-error, --strict-model-config,
// --log-verbose, --log-format, --cache-config), so a Triton command line
// mostly carries over; servekit's own (--batch, --cache-redis,
// --max-inflight, --drain-delay, --cuda, ...) are listed by
// servekit serve --help, in sections.
//
// Every flag of every subcommand can also come from the environment, by
// one rule: SERVEKIT_ followed by the flag's name in upper case, dashes
// as underscores (--http-port: $SERVEKIT_HTTP_PORT, --model-repository:
// $SERVEKIT_MODEL_REPOSITORY). The command line wins over the
// environment; an empty variable counts as unset (Kubernetes sets unset
// optional ones to ""); a repeatable flag takes a comma-separated list; a
// value that does not parse is an error naming the variable. --help shows
// each flag's variable. Besides these, only what a platform defines is
// read: $PORT (Cloud Run) or $AIP_HTTP_PORT (Vertex AI) gives --http-port
// its default, and $ONNXRUNTIME_LIB is where ONNX Runtime is found when
// --ort-lib is not given. examples/realtime's old variables
// ($SERVEKIT_ADDR, $SERVEKIT_MODELS, $SERVEKIT_REDIS, ...) are refused
// with their new names rather than silently ignored.
//
// # Ports
//
// As in Triton, HTTP (8000), gRPC (8001) and metrics (8002) listen apart,
// so a scraper and clients can be given different network policies. The
// HTTP port also answers gRPC over plaintext HTTP/2 (h2c), for platforms
// that expose one port (Cloud Run, Knative); a --metrics-port equal to
// --http-port (0 included) serves /metrics there too, and a --grpc-port
// equal to it opens no gRPC port of its own.
//
// # Choices where Triton differs or is silent
//
//   - --exit-on-error is true, as in Triton: a repository version that
//     fails to load at start stops the server, so a bad rollout fails
//     its readiness in CI instead of serving half the models.
//     --exit-on-error=false serves the others and reports the failure in
//     the repository index and the log.
//   - --model-control-mode none is the default, as in Triton: the
//     repository is read once. poll re-reads it every
//     --repository-poll-secs (fractions allowed); explicit loads
//     --load-model only and lets clients load and unload through the
//     repository extension behind --admin-token, never unauthenticated.
//   - --log-format json writes one JSON object a line (log/slog), the
//     startup facts included as records, so every line parses;
//     --log-verbose 1 adds debug records.
//   - SIGTERM drains: readiness fails for --drain-delay while requests
//     are still served, then new requests get 503 with Retry-After and
//     in-flight ones get up to --exit-timeout-secs.
//   - --gc-min-heap 16 MiB: no garbage collection while the Go heap is
//     smaller. servekit keeps about 1 MiB of Go memory alive (models live
//     in ONNX Runtime's memory), and Go's own 4 MiB floor made it collect
//     about 100 times a second under load: 15-20% of a one-core server's
//     CPU on the demo model, REST and gRPC alike. After each collection
//     GOGC is set so the next one comes at the floor, and is Go's 100 once
//     the live heap is half the floor or more, so a big heap is never
//     multiplied (gc.go). GOMEMLIMIT still caps it; $GOGC set turns it
//     off; 0 keeps Go's defaults.
//
// servekit infer names the model --model-name, not --model: serve takes
// --model as NAME=PATH, and a container that sets $SERVEKIT_MODEL for
// serve must not change what infer asks.
//
// Built with -tags servekit_nogrpc the binary has no gRPC (REST only);
// with -tags servekit_noredis no Redis client (README "At the edge").
package main
