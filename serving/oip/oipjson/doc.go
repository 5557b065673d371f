// Package oipjson is the Open Inference Protocol's JSON codec, one for
// every part of servekit that reads or writes the protocol's bodies: the
// REST transport (serving/httpapi), a repository's warm-up request files,
// the prediction logger's CloudEvents, and Go clients of V2 servers.
//
// Reach for DecodeInferRequest (a server reading a request: a transport
// keeps the InferRequest in its per-request state) and AppendResponse
// (writing the answer), or, on a client, AppendRequest and
// DecodeResponse: both directions of both messages.
//
//   - V2 infer requests and answers, with Triton's binary tensor extension:
//     a body of JSON followed by raw tensors, its JSON length in
//     Inference-Header-Content-Length (HeaderContentLength); inputs and
//     outputs travel raw when their parameters carry binary_data_size, and
//     an answer's outputs when the request asked with binary_data or
//     binary_data_output. Triton's classification extension is read from
//     an output's "classification" parameter (Classifications).
//   - V1 bodies ({"instances": ...} or {"inputs": ...}) and answers
//     ({"predictions": ...} or {"outputs": ...}): DecodeV1,
//     AppendV1Response.
//   - The answers of Triton's extensions as Triton writes them:
//     AppendStatistics, AppendConfig, AppendIndex, and the body of a
//     repository request (DecodeRepositoryRequest). Triton's clients read
//     them with rapidjson and GetUint64, so 64-bit integers are JSON
//     numbers (protojson would write strings) and every member they index
//     is present.
//
// # Tensors in JSON
//
// "data" may be flat or nested; nested arrays must be regular and the
// element count must match "shape". BYTES elements are JSON strings and
// must be valid UTF-8 (binary data carries arbitrary bytes; non-UTF-8
// output bytes are written as U+FFFD). FP16 and BF16 travel as JSON
// numbers (round to nearest even; a finite value beyond the type's range
// is refused). Answers are flat, as Triton's are.
//
// # NaN and infinities
//
// JSON has no NaN or Infinity. The codec writes the strings "NaN",
// "Infinity" and "-Infinity" by default (NonFiniteString), as the proto3
// JSON mapping (and so KServe's gRPC gateway) does, and reads those strings
// in any float input; NonFiniteBare writes Triton's bare tokens,
// NonFiniteNull writes null. Bare tokens in requests are refused: the
// decoder accepts exactly the JSON that json.Valid accepts. There is one
// policy, the caller's choice, for every writer: the transports and the
// prediction logger agree on what a NaN looks like.
//
// # Cost
//
// Decoding keeps serving's cost budget (serving.DecodeBudget: 16 × the
// body + 1 MiB), requests and answers alike: a JSON data array is sized
// from its shape only while the shapes claim no more elements than the
// JSON could hold, else its elements are counted first; V1 tensors, which
// have no shape, are always counted first; binary tensors go through
// serving.FromRaw, which checks the bytes before allocating; counts are
// capped by oip.Limits (a zero field is its default); repeated names are
// found with a set. The decoder accepts what encoding/json accepted
// before it (differential_test.go), quirks included: keys match
// case-insensitively, the last of a repeated key wins.
//
// # Performance
//
// The request is decoded by hand in one pass that also checks JSON syntax
// and UTF-8; "data" goes straight into a typed slice, typical decimals
// through Clinger's exact fast path and the rest through strconv on a view
// of the body; short strings and small arrays share one allocation with
// the request (InferRequest's room). Bodies are written with
// strconv.Append* into pooled buffers (Buffer, PutBuffer).
//
// Everything here is safe for concurrent use; an InferRequest belongs to
// one request.
package oipjson
