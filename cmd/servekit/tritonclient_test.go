package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// A model repository the way Triton's quick start lays one out, served
// with Triton's model control: fraud loaded at start (-load-model), other
// on disk and not loaded, clients loading and unloading through the
// repository extension behind the admin token.
const adminSecret = "replay-secret"

func tritonRepo(t *testing.T) (base string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	put(t, filepath.Join(dir, "fraud", "config.pbtxt"), []byte(`name: "fraud"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "features" data_type: TYPE_FP32 dims: [ 8 ] } ]
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
`))
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	put(t, filepath.Join(dir, "other", "1", "model.onnx"), fraudVariant(t, 1))
	base, _, stop = start(t, "--model-repository", dir, "--model-control-mode", "explicit", "--load-model", "fraud",
		"--admin-token", adminSecret)
	return base, stop
}

var bearer = map[string]string{"Authorization": "Bearer " + adminSecret}

// The calls of Triton's Python HTTP client (tritonclient.http,
// InferenceServerClient), in the order a client script makes them, each
// request as the client builds it (json.dumps bodies, Triton's binary
// tensor extension, Inference-Header-Content-Length) and each answer read
// as the client reads it (status 200 or the body's "error";
// InferResult.as_numpy).
func TestTritonClientSequenceREST(t *testing.T) {
	base, stop := tritonRepo(t)
	defer stop()
	v2 := base + "/v2"
	status := func(method, url string, header map[string]string, body []byte) int {
		resp, _ := call(t, method, url, header, body)
		return resp.StatusCode
	}
	// is_server_live, is_server_ready, is_model_ready: the status is the answer.
	if status(http.MethodGet, v2+"/health/live", nil, nil) != 200 || status(http.MethodGet, v2+"/health/ready", nil, nil) != 200 ||
		status(http.MethodGet, v2+"/models/fraud/ready", nil, nil) != 200 {
		t.Fatal("server or fraud not live and ready")
	}
	// get_server_metadata
	resp, b := call(t, http.MethodGet, v2, nil, nil)
	ok200(t, "get_server_metadata", resp, b)
	ext := list(t, member(t, decodeDoc(t, b), "extensions"))
	for _, want := range []string{"binary_tensor_data", "model_configuration", "statistics", "model_repository"} {
		if !containsStr(ext, want) {
			t.Errorf("extensions %v lack %s", ext, want)
		}
	}
	// get_model_metadata, get_model_config
	resp, b = call(t, http.MethodGet, v2+"/models/fraud", nil, nil)
	ok200(t, "get_model_metadata", resp, b)
	if got := fmt.Sprint(member(t, decodeDoc(t, b), "versions")); got != "[1]" {
		t.Errorf("versions %s", got)
	}
	resp, b = call(t, http.MethodGet, v2+"/models/fraud/config", nil, nil)
	ok200(t, "get_model_config", resp, b)
	cfg := decodeDoc(t, b)
	if u64(t, member(t, cfg, "max_batch_size")) != 8 || fmt.Sprint(member(t, list(t, member(t, cfg, "input"))[0], "dims")) != "[8]" ||
		str(t, member(t, cfg, "name")) != "fraud" || !has(cfg, "dynamic_batching") {
		t.Errorf("config %s: want config.pbtxt's, numbers as numbers", b)
	}

	// get_model_repository_index: POST with an empty body; without the
	// admin token, refused with the client's error shape.
	resp, b = call(t, http.MethodPost, v2+"/repository/index", nil, []byte(""))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(str(t, member(t, decodeDoc(t, b), "error")), "unauthenticated") {
		t.Errorf("index without the token: %d %s, want 401 with an error", resp.StatusCode, b)
	}
	index := func() map[string]string {
		resp, b := call(t, http.MethodPost, v2+"/repository/index", bearer, []byte(""))
		ok200(t, "get_model_repository_index", resp, b)
		out := map[string]string{}
		for _, e := range list(t, decodeDoc(t, b)) {
			v := ""
			if has(e, "version") {
				v = str(t, member(t, e, "version"))
			}
			out[str(t, member(t, e, "name"))+"/"+v] = str(t, member(t, e, "state"))
		}
		return out
	}
	if got := fmt.Sprint(index()); got != "map[fraud/1:READY other/:UNAVAILABLE]" {
		t.Errorf("index %s", got)
	}
	// load_model("other"): body json.dumps({}).
	resp, b = call(t, http.MethodPost, v2+"/repository/models/other/load", bearer, []byte("{}"))
	ok200(t, "load_model", resp, b)
	if status(http.MethodGet, v2+"/models/other/ready", nil, nil) != 200 {
		t.Error("other not ready after load_model")
	}

	// infer with binary data both ways (InferInput.set_data_from_numpy(...,
	// binary_data=True), InferRequestedOutput("score", binary_data=True)),
	// then with JSON, then with no outputs named (binary_data_output).
	row := []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4}
	raw := floatsRaw(row)
	header := `{"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "parameters": {"binary_data_size": 32}}], "outputs": [{"name": "score", "parameters": {"binary_data": true}}]}`
	resp, b = call(t, http.MethodPost, v2+"/models/fraud/infer", map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(header))}, append([]byte(header), raw...))
	ok200(t, "infer (binary)", resp, b)
	binScore := asNumpy(t, resp, b, "score")
	jsonBody := `{"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "data": [0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4]}], "outputs": [{"name": "score", "parameters": {"binary_data": false}}]}`
	resp, b = call(t, http.MethodPost, v2+"/models/fraud/infer", nil, []byte(jsonBody))
	ok200(t, "infer (JSON)", resp, b)
	if js := asNumpy(t, resp, b, "score"); len(js) != 1 || len(binScore) != 1 || js[0] != binScore[0] {
		t.Errorf("JSON score %v, binary %v", js, binScore)
	}
	header = `{"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32", "parameters": {"binary_data_size": 32}}], "parameters": {"binary_data_output": true}}`
	resp, b = call(t, http.MethodPost, v2+"/models/fraud/infer", map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(header))}, append([]byte(header), raw...))
	ok200(t, "infer (no outputs named)", resp, b)
	if s := asNumpy(t, resp, b, "score"); len(s) != 1 || s[0] != binScore[0] {
		t.Errorf("binary_data_output score %v, want %v", s, binScore)
	}

	// get_inference_statistics("fraud"): the three requests.
	resp, b = call(t, http.MethodGet, v2+"/models/fraud/stats", nil, nil)
	ok200(t, "get_inference_statistics", resp, b)
	if s := parseStatsJSON(t, b)[[2]string{"fraud", "1"}]; s.success != 3 || s.inference != 3 {
		t.Errorf("statistics %+v, want 3 successful requests of 1 row", s)
	}
	resp, b = call(t, http.MethodGet, v2+"/models/stats", nil, nil)
	ok200(t, "get_inference_statistics()", resp, b)
	if all := parseStatsJSON(t, b); len(all) != 2 {
		t.Errorf("every model's statistics: %v, want fraud/1 and other/1", all)
	}

	// unload_model("fraud"): body {"parameters": {"unload_dependents": false}}.
	resp, b = call(t, http.MethodPost, v2+"/repository/models/fraud/unload", bearer, []byte(`{"parameters": {"unload_dependents": false}}`))
	ok200(t, "unload_model", resp, b)
	if status(http.MethodGet, v2+"/models/fraud/ready", nil, nil) == 200 {
		t.Error("is_model_ready(fraud) still true after unload_model")
	}
	if got := fmt.Sprint(index()); got != "map[fraud/:UNAVAILABLE other/1:READY]" {
		t.Errorf("index after the unload %s", got)
	}
}

// asNumpy is InferResult.as_numpy for an FP32 output: from the binary part
// when the output has binary_data_size, else from "data".
func asNumpy(t *testing.T, resp *http.Response, b []byte, name string) []float32 {
	t.Helper()
	js, bin := b, []byte(nil)
	if h := resp.Header.Get("Inference-Header-Content-Length"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n > len(b) {
			t.Fatalf("Inference-Header-Content-Length %q", h)
		}
		js, bin = b[:n], b[n:]
	}
	var r struct {
		Outputs []struct {
			Name       string
			Datatype   string
			Shape      []int64
			Data       []float32
			Parameters map[string]json.Number
		}
	}
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatalf("answer %s: %v", js, err)
	}
	offset := 0
	for _, o := range r.Outputs {
		size, binary := o.Parameters["binary_data_size"]
		n, _ := size.Int64()
		if o.Name == name {
			if binary {
				return rawFloats(bin[offset : offset+int(n)])
			}
			return o.Data
		}
		offset += int(n)
	}
	t.Fatalf("no output %q in %s", name, js)
	return nil
}

// The calls of Triton's Python gRPC client (tritonclient.grpc) in the same
// order, over grpc-go: the same service, messages and metadata (the admin
// token as "authorization" metadata, as the client's headers argument
// sends it).
func TestTritonClientSequenceGRPC(t *testing.T) {
	base, stop := tritonRepo(t)
	defer stop()
	cc, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminSecret)
	invoke := func(ctx context.Context, method string, req, resp proto.Message) error {
		return cc.Invoke(ctx, method, req, resp)
	}
	must := func(ctx context.Context, method string, req, resp proto.Message) {
		t.Helper()
		if err := invoke(ctx, method, req, resp); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	var live pb.ServerLiveResponse
	var ready pb.ServerReadyResponse
	var mready pb.ModelReadyResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceServerLiveProcedure, &pb.ServerLiveRequest{}, &live)
	must(ctx, inferencepbconnect.GRPCInferenceServiceServerReadyProcedure, &pb.ServerReadyRequest{}, &ready)
	must(ctx, inferencepbconnect.GRPCInferenceServiceModelReadyProcedure, &pb.ModelReadyRequest{Name: "fraud"}, &mready)
	if !live.GetLive() || !ready.GetReady() || !mready.GetReady() {
		t.Fatalf("live %v ready %v fraud ready %v", &live, &ready, &mready)
	}
	var meta pb.ServerMetadataResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceServerMetadataProcedure, &pb.ServerMetadataRequest{}, &meta)
	for _, want := range []string{"model_configuration", "statistics", "model_repository"} {
		if !slices.Contains(meta.GetExtensions(), want) {
			t.Errorf("extensions %v lack %s", meta.GetExtensions(), want)
		}
	}
	var md pb.ModelMetadataResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceModelMetadataProcedure, &pb.ModelMetadataRequest{Name: "fraud"}, &md)
	var cfg pb.ModelConfigResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceModelConfigProcedure, &pb.ModelConfigRequest{Name: "fraud"}, &cfg)
	if cfg.GetConfig().GetMaxBatchSize() != 8 || cfg.GetConfig().GetDynamicBatching() == nil || cfg.GetConfig().GetInput()[0].GetDims()[0] != 8 {
		t.Errorf("config %v", cfg.GetConfig())
	}

	var idx pb.RepositoryIndexResponse
	if err := invoke(ctx, inferencepbconnect.GRPCInferenceServiceRepositoryIndexProcedure, &pb.RepositoryIndexRequest{}, &idx); status.Code(err) != codes.Unauthenticated {
		t.Errorf("index without the token: %v, want Unauthenticated", err)
	}
	index := func() string {
		var idx pb.RepositoryIndexResponse
		must(admin, inferencepbconnect.GRPCInferenceServiceRepositoryIndexProcedure, &pb.RepositoryIndexRequest{}, &idx)
		var s []string
		for _, m := range idx.GetModels() {
			s = append(s, m.GetName()+"/"+m.GetVersion()+":"+m.GetState())
		}
		return strings.Join(s, " ")
	}
	if got := index(); got != "fraud/1:READY other/:UNAVAILABLE" {
		t.Errorf("index %s", got)
	}
	must(admin, inferencepbconnect.GRPCInferenceServiceRepositoryModelLoadProcedure, &pb.RepositoryModelLoadRequest{ModelName: "other"}, &pb.RepositoryModelLoadResponse{})

	// infer as InferInput.set_data_from_numpy does it: raw_input_contents.
	req := &pb.ModelInferRequest{ModelName: "fraud",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "score"}},
		RawInputContents: [][]byte{floatsRaw([]float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4})}}
	var out pb.ModelInferResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, req, &out)
	if len(out.GetRawOutputContents()) != 1 || len(rawFloats(out.GetRawOutputContents()[0])) != 1 || out.GetModelVersion() != "1" {
		t.Errorf("answer %v", &out)
	}
	var st pb.ModelStatisticsResponse
	must(ctx, inferencepbconnect.GRPCInferenceServiceModelStatisticsProcedure, &pb.ModelStatisticsRequest{Name: "fraud"}, &st)
	if s := st.GetModelStats(); len(s) != 1 || s[0].GetVersion() != "1" || s[0].GetInferenceStats().GetSuccess().GetCount() != 1 || s[0].GetInferenceCount() != 1 {
		t.Errorf("statistics %v", &st)
	}
	unload := &pb.RepositoryModelUnloadRequest{ModelName: "fraud", Parameters: map[string]*pb.ModelRepositoryParameter{
		"unload_dependents": {ParameterChoice: &pb.ModelRepositoryParameter_BoolParam{BoolParam: false}}}}
	must(admin, inferencepbconnect.GRPCInferenceServiceRepositoryModelUnloadProcedure, unload, &pb.RepositoryModelUnloadResponse{})
	// is_model_ready of a model no longer served: NotFound, as REST's 404
	// and KServe's gRPC server answer (Triton's answers ready=false).
	if err := invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelReadyProcedure, &pb.ModelReadyRequest{Name: "fraud"}, &mready); status.Code(err) != codes.NotFound {
		t.Errorf("fraud after the unload: %v", err)
	}
	if got := index(); got != "fraud/:UNAVAILABLE other/1:READY" {
		t.Errorf("index after the unload %s", got)
	}
	// What servekit does not serve is said, not faked.
	for _, c := range []struct {
		method string
		req    proto.Message
		resp   proto.Message
		code   codes.Code
	}{
		{inferencepbconnect.GRPCInferenceServiceSystemSharedMemoryRegisterProcedure, &pb.SystemSharedMemoryRegisterRequest{Name: "r"}, &pb.SystemSharedMemoryRegisterResponse{}, codes.Unimplemented},
		{inferencepbconnect.GRPCInferenceServiceSystemSharedMemoryStatusProcedure, &pb.SystemSharedMemoryStatusRequest{}, &pb.SystemSharedMemoryStatusResponse{}, codes.OK},
		{inferencepbconnect.GRPCInferenceServiceCudaSharedMemoryUnregisterProcedure, &pb.CudaSharedMemoryUnregisterRequest{}, &pb.CudaSharedMemoryUnregisterResponse{}, codes.OK},
		{inferencepbconnect.GRPCInferenceServiceTraceSettingProcedure, &pb.TraceSettingRequest{}, &pb.TraceSettingResponse{}, codes.Unimplemented},
		{inferencepbconnect.GRPCInferenceServiceLogSettingsProcedure, &pb.LogSettingsRequest{}, &pb.LogSettingsResponse{}, codes.Unimplemented},
	} {
		if err := invoke(ctx, c.method, c.req, c.resp); status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", c.method, err, c.code)
		}
	}
}
