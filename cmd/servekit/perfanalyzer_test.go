package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// The request sequence of perf_analyzer (triton-inference-server/
// perf_analyzer: PerfAnalyzer::CreateAnalyzerObjects, ModelParser::
// InitTriton, InferenceProfiler, TritonClientBackend), replayed against
// the server as `perf_analyzer -m fraud -b 2 -u HOST:PORT` sends it over
// HTTP (the C++ client's requests, binary tensors, its default) and gRPC:
//
//  1. model metadata: name, and each input's and output's name, datatype
//     and shape (GetInt on each dim);
//  2. model configuration: max_batch_size (which must allow -b 2 and says
//     which metadata dim is the batch), model_transaction_policy.decoupled
//     and response_cache.enable (indexed without a check when their message
//     is there), the scheduler (dynamic_batching), input/output names that
//     metadata must know;
//  3. server metadata: "statistics" among the extensions, or no server
//     statistics;
//  4. statistics before the measurement;
//  5. inferences: every input raw (binary_data_size), every output asked
//     for binary (binary_data: true), Inference-Header-Content-Length;
//     answers read by binary_data_size;
//  6. statistics after: the version whose queue count grew (a number),
//     and the differences perf_analyzer prints as its server-side
//     latencies.
const (
	paRequests = 20
	paBatch    = 2
)

func TestPerfAnalyzerSequenceREST(t *testing.T) {
	base, _, stop := start(t, "--batch")
	defer stop()
	model := base + "/v2/models/fraud"

	resp, b := call(t, http.MethodGet, model, nil, nil)
	ok200(t, "model metadata", resp, b)
	md := decodeDoc(t, b)
	if str(t, member(t, md, "name")) != "fraud" {
		t.Errorf("metadata name %v", member(t, md, "name"))
	}

	resp, b = call(t, http.MethodGet, model+"/config", nil, nil)
	ok200(t, "model config", resp, b)
	cfg := decodeDoc(t, b)
	maxBatch := checkPAConfig(t, cfg, md)
	inputs, outputs := parseTensors(t, md, "inputs", maxBatch), parseTensors(t, md, "outputs", maxBatch)

	resp, b = call(t, http.MethodGet, base+"/v2", nil, nil)
	ok200(t, "server metadata", resp, b)
	if ext := list(t, member(t, decodeDoc(t, b), "extensions")); !containsStr(ext, "statistics") {
		t.Fatalf("extensions %v lack statistics: perf_analyzer would report no server-side statistics", ext)
	}

	stats := func() map[[2]string]serverStats {
		resp, b := call(t, http.MethodGet, model+"/stats", nil, nil)
		ok200(t, "statistics", resp, b)
		return parseStatsJSON(t, b)
	}
	before := stats()

	for i := range paRequests {
		body, jsonLen := paInferBody(t, inputs, outputs, i)
		resp, b := call(t, http.MethodPost, model+"/infer", map[string]string{
			"Inference-Header-Content-Length": strconv.Itoa(jsonLen),
			"Expect":                          "", // curl's way of dropping Expect: 100-continue
			"Content-Type":                    "application/octet-stream",
		}, body)
		ok200(t, "infer", resp, b)
		n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
		if err != nil || n > len(b) {
			t.Fatalf("answer without a usable Inference-Header-Content-Length (%q) for %d bytes", resp.Header.Get("Inference-Header-Content-Length"), len(b))
		}
		offset := n
		for _, o := range list(t, member(t, decodeDoc(t, b[:n]), "outputs")) {
			size := u64(t, member(t, o, "parameters", "binary_data_size")) // MemberAsUInt
			if offset+int(size) > len(b) {
				t.Fatalf("output %v: %d bytes past the body", o, size)
			}
			if got := rawFloats(b[offset : offset+int(size)]); len(got) != paBatch {
				t.Errorf("output %v: %d values for a batch of %d", o, len(got), paBatch)
			}
			offset += int(size)
		}
		if offset != len(b) {
			t.Errorf("%d bytes of the answer no output claims", len(b)-offset)
		}
	}

	after := stats()
	checkPAStats(t, before, after)
}

// paInferBody is the body Triton's C++ client writes for perf_analyzer's
// request i: the JSON header ("id" always, written empty), each input
// raw, each output asked for as binary data, then the raw inputs.
func paInferBody(t *testing.T, inputs, outputs []tensor, i int) ([]byte, int) {
	t.Helper()
	var js strings.Builder
	js.WriteString(`{"id":"","inputs":[`)
	var raw []byte
	for k, in := range inputs {
		if in.datatype != "FP32" {
			t.Fatalf("input %s is %s: this replay sends FP32", in.name, in.datatype)
		}
		shape := append([]int64{paBatch}, in.shape...)
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		vals := make([]float32, n)
		for j := range vals {
			vals[j] = float32(i+j) / 10
		}
		data := floatsRaw(vals)
		raw = append(raw, data...)
		if k > 0 {
			js.WriteByte(',')
		}
		fmt.Fprintf(&js, `{"name":%q,"datatype":"FP32","shape":%s,"parameters":{"binary_data_size":%d}}`, in.name, jsonInts(shape), len(data))
	}
	js.WriteString(`],"outputs":[`)
	for k, o := range outputs {
		if k > 0 {
			js.WriteByte(',')
		}
		fmt.Fprintf(&js, `{"name":%q,"parameters":{"binary_data":true}}`, o.name)
	}
	js.WriteString(`]}`)
	return append([]byte(js.String()), raw...), js.Len()
}

func jsonInts(v []int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkPAConfig reads the configuration as ModelParser::InitTriton and
// DetermineSchedulerType do, and returns max_batch_size.
func checkPAConfig(t *testing.T, cfg, md doc) int64 {
	t.Helper()
	maxBatch := int64(0)
	if has(cfg, "max_batch_size") {
		maxBatch = paInt(t, member(t, cfg, "max_batch_size"))
	}
	if maxBatch < paBatch {
		t.Fatalf("max_batch_size %d: perf_analyzer -b %d would refuse the model (the server batches with -batch)", maxBatch, paBatch)
	}
	if has(cfg, "model_transaction_policy") && boolean(t, member(t, cfg, "model_transaction_policy", "decoupled")) {
		t.Error("decoupled: perf_analyzer would demand --async --streaming")
	}
	if has(cfg, "response_cache") {
		boolean(t, member(t, cfg, "response_cache", "enable"))
	}
	if has(cfg, "sequence_batching") || has(cfg, "ensemble_scheduling") || !has(cfg, "dynamic_batching") {
		t.Errorf("scheduler: want dynamic_batching alone for a batched model, got %v", cfg)
	}
	known := map[string]bool{}
	for _, k := range []string{"inputs", "outputs"} {
		for _, x := range list(t, member(t, md, k)) {
			known[str(t, member(t, x, "name"))] = true
		}
	}
	for _, k := range []string{"input", "output"} {
		if !has(cfg, k) {
			continue
		}
		for _, x := range list(t, member(t, cfg, k)) {
			if name := str(t, member(t, x, "name")); !known[name] {
				t.Errorf("no metadata found for %s tensor %s", k, name)
			}
			if has(x, "is_shape_tensor") {
				boolean(t, member(t, x, "is_shape_tensor"))
			}
			if has(x, "optional") {
				boolean(t, member(t, x, "optional"))
			}
		}
	}
	return maxBatch
}

// checkPAStats is InferenceProfiler::SummarizeServerStatsHelper: the
// differences it prints, which must describe the requests replayed.
func checkPAStats(t *testing.T, before, after map[[2]string]serverStats) {
	t.Helper()
	v := statsVersion(t, "fraud", before, after)
	id := [2]string{"fraud", v}
	a, b := after[id], before[id]
	d := func(x, y uint64) uint64 { return x - y }
	if v != "1" {
		t.Errorf("version %s answered, want 1", v)
	}
	if n := d(a.success, b.success); n != paRequests {
		t.Errorf("successful request count %d, want %d", n, paRequests)
	}
	for name, n := range map[string]uint64{"queue": d(a.queue, b.queue), "compute input": d(a.computeInput, b.computeInput),
		"compute infer": d(a.computeInfer, b.computeInfer), "compute output": d(a.computeOut, b.computeOut)} {
		if n != paRequests {
			t.Errorf("%s count %d, want one per request, %d", name, n, paRequests)
		}
	}
	if n := d(a.inference, b.inference); n != paRequests*paBatch {
		t.Errorf("inference count %d, want %d rows", n, paRequests*paBatch)
	}
	if n := d(a.execution, b.execution); n < 1 || n > paRequests {
		t.Errorf("execution count %d, want 1 to %d", n, paRequests)
	}
	if d(a.successNS, b.successNS) == 0 || d(a.inferNS, b.inferNS) == 0 || d(a.inputNS, b.inputNS) == 0 || d(a.outputNS, b.outputNS) == 0 {
		t.Errorf("zero latencies: %+v", a)
	}
	if a.successNS-b.successNS < (a.inferNS - b.inferNS) {
		t.Errorf("requests took %dns in all, less than their compute %dns", a.successNS-b.successNS, a.inferNS-b.inferNS)
	}
}

// The same sequence over gRPC, with grpc-go as Triton's C++ gRPC client
// sends it: perf_analyzer turns the metadata and configuration messages
// into JSON with protobuf's printer (field names as in the .proto, every
// primitive field, 64-bit integers as strings) and reads that JSON as it
// reads REST's; inputs travel in raw_input_contents, answers in
// raw_output_contents.
func TestPerfAnalyzerSequenceGRPC(t *testing.T) {
	base, _, stop := start(t, "--batch")
	defer stop()
	cc, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	invoke := func(method string, req, resp proto.Message) {
		t.Helper()
		if err := cc.Invoke(ctx, method, req, resp); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	asDoc := func(m proto.Message) doc { return cppJSON(t, m) }

	var mdResp pb.ModelMetadataResponse
	invoke(inferencepbconnect.GRPCInferenceServiceModelMetadataProcedure, &pb.ModelMetadataRequest{Name: "fraud"}, &mdResp)
	md := asDoc(&mdResp)
	var cfgResp pb.ModelConfigResponse
	invoke(inferencepbconnect.GRPCInferenceServiceModelConfigProcedure, &pb.ModelConfigRequest{Name: "fraud"}, &cfgResp)
	cfg := member(t, asDoc(&cfgResp), "config")
	maxBatch := checkPAConfig(t, cfg, md)
	inputs, outputs := parseTensors(t, md, "inputs", maxBatch), parseTensors(t, md, "outputs", maxBatch)

	var meta pb.ServerMetadataResponse
	invoke(inferencepbconnect.GRPCInferenceServiceServerMetadataProcedure, &pb.ServerMetadataRequest{}, &meta)
	if !strings.Contains(strings.Join(meta.GetExtensions(), " "), "statistics") {
		t.Fatalf("extensions %v lack statistics", meta.GetExtensions())
	}

	stats := func() map[[2]string]serverStats {
		var st pb.ModelStatisticsResponse
		invoke(inferencepbconnect.GRPCInferenceServiceModelStatisticsProcedure, &pb.ModelStatisticsRequest{Name: "fraud"}, &st)
		out := map[[2]string]serverStats{} // TritonClientBackend::ParseStatistics(proto)
		for _, s := range st.GetModelStats() {
			in := s.GetInferenceStats()
			out[[2]string{s.GetName(), s.GetVersion()}] = serverStats{
				inference: s.GetInferenceCount(), execution: s.GetExecutionCount(),
				success: in.GetSuccess().GetCount(), queue: in.GetQueue().GetCount(),
				computeInput: in.GetComputeInput().GetCount(), computeInfer: in.GetComputeInfer().GetCount(), computeOut: in.GetComputeOutput().GetCount(),
				successNS: in.GetSuccess().GetNs(), queueNS: in.GetQueue().GetNs(), inputNS: in.GetComputeInput().GetNs(),
				inferNS: in.GetComputeInfer().GetNs(), outputNS: in.GetComputeOutput().GetNs(),
				cacheHit: in.GetCacheHit().GetCount(), cacheMiss: in.GetCacheMiss().GetCount(),
			}
		}
		return out
	}
	before := stats()
	for i := range paRequests {
		req := &pb.ModelInferRequest{ModelName: "fraud"}
		body, jsonLen := paInferBody(t, inputs, outputs, i)
		raw := body[jsonLen:]
		for _, in := range inputs {
			shape := append([]int64{paBatch}, in.shape...)
			req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: in.name, Datatype: in.datatype, Shape: shape})
			n := 4 * int(shape[0]*shape[1])
			req.RawInputContents, raw = append(req.RawInputContents, raw[:n]), raw[n:]
		}
		for _, o := range outputs {
			req.Outputs = append(req.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o.name})
		}
		var resp pb.ModelInferResponse
		invoke(inferencepbconnect.GRPCInferenceServiceModelInferProcedure, req, &resp)
		if len(resp.GetRawOutputContents()) != len(outputs) || len(rawFloats(resp.GetRawOutputContents()[0])) != paBatch {
			t.Fatalf("answer %v", &resp)
		}
	}
	checkPAStats(t, before, stats())
}

// cppJSON is protobuf's C++ MessageToJsonString with perf_analyzer's
// options (preserve_proto_field_names, always_print_primitive_fields):
// protojson's EmitUnpopulated writes the same, except that it writes an
// unset message as null where the C++ printer leaves it out.
func cppJSON(t *testing.T, m proto.Message) doc {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var drop func(v any) any
	drop = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if e == nil {
					delete(x, k)
				} else {
					x[k] = drop(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = drop(x[i])
			}
		}
		return v
	}
	return drop(decodeDoc(t, b))
}
