package grpcapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/httpapi"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// fakeRepo is an oip.Repository that records what it is asked.
type fakeRepo struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeRepo) Index(context.Context) ([]oip.IndexEntry, error) {
	return []oip.IndexEntry{{Name: "m", Version: "1", State: oip.StateReady}, {Name: "n", State: oip.StateUnavailable, Reason: "unloaded"}}, nil
}

func (f *fakeRepo) LoadModel(_ context.Context, m string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "load "+m)
	return nil
}

func (f *fakeRepo) UnloadModel(_ context.Context, m string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unload "+m)
	return nil
}

func (f *fakeRepo) ModelConfig(string) (*mc.ModelConfig, bool) { return nil, false }

// Triton's extensions over gRPC, from the same Server as REST: extensions
// listed, the configuration, the statistics of the requests the gRPC and
// REST transports answered together.
func TestExtensionsGRPC(t *testing.T) {
	for _, server := range []string{"connect", "native"} {
		t.Run(server, func(t *testing.T) {
			srv := oip.NewServer()
			_ = srv.Handle("m", servingtest.Linear(2), oip.Version("1"))
			extensionsGRPC(t, srv, clientOf(t, server, srv))
		})
	}
}

// clientOf is the client of the named server of m's models.
func clientOf(t *testing.T, server string, m grpcapi.Models) inferencepbconnect.GRPCInferenceServiceClient {
	for _, c := range clients(t, m) {
		if c.name == server {
			return c.GRPCInferenceServiceClient
		}
	}
	t.Fatalf("no server %q", server)
	return nil
}

func extensionsGRPC(t *testing.T, srv *oip.Server, c inferencepbconnect.GRPCInferenceServiceClient) {
	ctx := context.Background()
	meta, err := c.ServerMetadata(ctx, connect.NewRequest(&pb.ServerMetadataRequest{}))
	if err != nil || strings.Join(meta.Msg.GetExtensions(), ",") != "classification,parameters,schedule_policy,model_configuration,statistics" {
		t.Errorf("server metadata %v %v", meta, err)
	}
	cfg, err := c.ModelConfig(ctx, connect.NewRequest(&pb.ModelConfigRequest{Name: "m", Version: "1"}))
	if err != nil || cfg.Msg.GetConfig().GetName() != "m" || len(cfg.Msg.GetConfig().GetInput()) != 1 {
		t.Errorf("config %v %v", cfg, err)
	}
	_, err = c.ModelConfig(ctx, connect.NewRequest(&pb.ModelConfigRequest{Name: "nope"}))
	wantCode(t, err, connect.CodeNotFound)

	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	if _, err := infer(c, grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: []serving.Tensor{x}})); err != nil {
		t.Fatal(err)
	}
	rest := httptestRecorder(httpapi.New(httpapi.WithServer(srv)), http.MethodPost, "/v2/models/m/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`)
	if rest.Code != 200 {
		t.Fatalf("REST infer: %d %s", rest.Code, rest.Body)
	}
	st, err := c.ModelStatistics(ctx, connect.NewRequest(&pb.ModelStatisticsRequest{Name: "m"}))
	if err != nil || len(st.Msg.GetModelStats()) != 1 {
		t.Fatalf("statistics %v %v", st, err)
	}
	s := st.Msg.GetModelStats()[0]
	if s.GetVersion() != "1" || s.GetInferenceStats().GetSuccess().GetCount() != 2 || s.GetInferenceCount() != 2 || s.GetLastInference() == 0 ||
		len(s.GetBatchStats()) != 1 || s.GetBatchStats()[0].GetBatchSize() != 1 {
		t.Errorf("statistics of one gRPC and one REST request: %v", s)
	}
}

// Repository control over gRPC: Unimplemented unless enabled, then behind
// the admin authoriser, which sees the call's metadata as headers.
func TestRepositoryControlGRPC(t *testing.T) {
	for _, server := range []string{"connect", "native"} {
		t.Run(server, func(t *testing.T) { repositoryControlGRPC(t, server) })
	}
}

func repositoryControlGRPC(t *testing.T, server string) {
	ctx := context.Background()
	_, err := clientOf(t, server, oip.NewServer()).RepositoryIndex(ctx, connect.NewRequest(&pb.RepositoryIndexRequest{}))
	wantCode(t, err, connect.CodeUnimplemented)

	auth := admin.BearerToken("s3cret")
	srv := oip.NewServer(oip.WithRepositoryControl(func(r *http.Request) (string, error) {
		if r.Header.Get("X-Forbidden") != "" {
			return "", errors.New("not this caller")
		}
		return auth(r)
	}))
	repo := &fakeRepo{}
	srv.AttachRepository(repo)
	c := clientOf(t, server, srv)
	idx := func(hdr ...string) (*pb.RepositoryIndexResponse, error) {
		req := connect.NewRequest(&pb.RepositoryIndexRequest{})
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header().Set(hdr[i], hdr[i+1])
		}
		resp, err := c.RepositoryIndex(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	_, err = idx()
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = idx("Authorization", "Bearer s3cret", "X-Forbidden", "1")
	wantCode(t, err, connect.CodePermissionDenied)
	got, err := idx("Authorization", "Bearer s3cret")
	if err != nil || len(got.GetModels()) != 2 || got.GetModels()[1].GetReason() != "unloaded" {
		t.Errorf("index %v %v", got, err)
	}

	load := connect.NewRequest(&pb.RepositoryModelLoadRequest{ModelName: "n"})
	load.Header().Set("Authorization", "Bearer s3cret")
	if _, err := c.RepositoryModelLoad(ctx, load); err != nil {
		t.Fatal(err)
	}
	unload := connect.NewRequest(&pb.RepositoryModelUnloadRequest{ModelName: "n", Parameters: map[string]*pb.ModelRepositoryParameter{
		"unload_dependents": {ParameterChoice: &pb.ModelRepositoryParameter_BoolParam{BoolParam: true}}}})
	unload.Header().Set("Authorization", "Bearer s3cret")
	if _, err := c.RepositoryModelUnload(ctx, unload); err != nil {
		t.Fatal(err)
	}
	other := connect.NewRequest(&pb.RepositoryModelLoadRequest{RepositoryName: "elsewhere", ModelName: "n"})
	other.Header().Set("Authorization", "Bearer s3cret")
	_, err = c.RepositoryModelLoad(ctx, other)
	wantCode(t, err, connect.CodeInvalidArgument)
	override := connect.NewRequest(&pb.RepositoryModelLoadRequest{ModelName: "n", Parameters: map[string]*pb.ModelRepositoryParameter{
		"config": {ParameterChoice: &pb.ModelRepositoryParameter_StringParam{StringParam: "{}"}}}})
	override.Header().Set("Authorization", "Bearer s3cret")
	_, err = c.RepositoryModelLoad(ctx, override)
	wantCode(t, err, connect.CodeUnimplemented)
	if got := strings.Join(repo.calls, ", "); got != "load n, unload n" {
		t.Errorf("repository calls: %s", got)
	}
}

// The RPCs servekit answers without serving them say so: shared memory
// has no regions (status lists none, unregistering all succeeds,
// registering is Unimplemented), trace and log settings are Unimplemented
// with where to configure them instead.
func TestUnservedRPCs(t *testing.T) {
	for _, c := range clients(t, oip.NewServer()) {
		t.Run(c.name, func(t *testing.T) { unservedRPCs(t, c) })
	}
}

func unservedRPCs(t *testing.T, c inferencepbconnect.GRPCInferenceServiceClient) {
	ctx := context.Background()
	st, err := c.SystemSharedMemoryStatus(ctx, connect.NewRequest(&pb.SystemSharedMemoryStatusRequest{}))
	if err != nil || len(st.Msg.GetRegions()) != 0 {
		t.Errorf("status %v %v", st, err)
	}
	_, err = c.SystemSharedMemoryStatus(ctx, connect.NewRequest(&pb.SystemSharedMemoryStatusRequest{Name: "r"}))
	wantCode(t, err, connect.CodeNotFound)
	if _, err := c.CudaSharedMemoryUnregister(ctx, connect.NewRequest(&pb.CudaSharedMemoryUnregisterRequest{})); err != nil {
		t.Errorf("unregister all: %v", err)
	}
	_, err = c.SystemSharedMemoryRegister(ctx, connect.NewRequest(&pb.SystemSharedMemoryRegisterRequest{Name: "r"}))
	wantCode(t, err, connect.CodeUnimplemented)
	if !strings.Contains(err.Error(), "raw_input_contents") {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
	_, err = c.TraceSetting(ctx, connect.NewRequest(&pb.TraceSettingRequest{}))
	wantCode(t, err, connect.CodeUnimplemented)
	_, err = c.LogSettings(ctx, connect.NewRequest(&pb.LogSettingsRequest{}))
	wantCode(t, err, connect.CodeUnimplemented)
}
