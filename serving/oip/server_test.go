package oip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// versioned is a default Predictor holding versions itself, as a rollout
// router does: it answers with the version asked for, else "2".
type versioned struct {
	*servingtest.Fake
	held map[string]*servingtest.Fake
}

func newVersioned() *versioned {
	v := &versioned{held: map[string]*servingtest.Fake{"1": servingtest.Linear(2), "2": servingtest.Linear(2)}}
	v.Fake = servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		ver := req.Version
		if ver == "" {
			ver = "2"
		}
		resp, err := v.held[ver].Predict(ctx, req)
		if err == nil {
			r := *resp
			r.Version = ver
			resp = &r
		}
		return resp, err
	})
	return v
}

func (v *versioned) Versions() []string { return []string{"1", "2"} }

func (v *versioned) Version(n string) (serving.Predictor, bool) {
	p, ok := v.held[n]
	return p, ok
}

// The model table's rules, the ones both transports follow: a version is
// registered once; the first Predictor, or one given Default, answers for
// no version; a default that holds versions answers for each, called with
// the version set, while the version speaks for its own readiness and
// metadata; unknown names and versions are NotFound.
func TestResolution(t *testing.T) {
	s := oip.NewServer()
	a, b := servingtest.Linear(2), servingtest.Linear(2)
	if err := s.Handle("m", a, oip.Version("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Handle("m", b, oip.Version("1")); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("version registered twice: %v", err)
	}
	if err := s.Handle("m", b, oip.Version("2")); err != nil {
		t.Fatal(err)
	}
	if p, v, _ := s.Lookup("m", ""); p != a || v != "1" {
		t.Errorf("default %v as %q, want the first, version 1", p, v)
	}
	s.Remove("m", "1")
	if p, v, _ := s.Lookup("m", ""); p != b || v != "2" {
		t.Errorf("after removing version 1 the default is %v as %q, want version 2", p, v)
	}
	r := newVersioned()
	if err := s.Handle("r", r); err != nil {
		t.Fatal(err)
	}
	tg, err := s.Resolve("r", "1")
	if err != nil || tg.Version != "1" || tg.Metadata().Name != "linear" {
		t.Errorf("a version the router holds: %+v %v", tg, err)
	}
	res, err := s.Infer(context.Background(), tg, servingtest.Rows(2, 1, 0), oip.Call{})
	if err != nil || res.Version != "1" {
		t.Errorf("infer on version 1 of the router: %+v %v", res, err)
	}
	if got := s.Versions("r"); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("versions %v", got)
	}
	for _, c := range [][2]string{{"nope", ""}, {"m", "9"}, {"r", "3"}} {
		if _, err := s.Resolve(c[0], c[1]); serving.CodeOf(err) != serving.NotFound {
			t.Errorf("Resolve%v: %v, want NotFound", c, err)
		}
	}
}

// The infer steps: the routing key (the parameter wins over the
// transport's header), the earliest deadline, readiness, a panic and a
// missing answer made Internal errors, output selection and
// classification.
func TestInferSteps(t *testing.T) {
	var logs bytes.Buffer
	s := oip.NewServer(oip.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var seen *serving.Request
	var deadline time.Duration
	rec := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		seen = req
		if d, ok := ctx.Deadline(); ok {
			deadline = time.Until(d)
		}
		y, _ := serving.NewTensor("y", []int64{1, 3}, []float32{0.1, 0.7, 0.2})
		z, _ := serving.NewTensor("z", []int64{1}, []float32{1})
		return &serving.Response{Outputs: []serving.Tensor{y, z}}, nil
	}).WithMetadata(serving.Metadata{Name: "c", Outputs: []serving.TensorSpec{{Name: "y", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"a", "b", "c"}}}})
	_ = s.Handle("c", rec, oip.Version("4"))
	ctx := context.Background()
	tg, _ := s.Resolve("c", "")

	req := servingtest.Rows(1, 1, 0)
	req.Params = serving.Params{serving.ParamRoutingKey: "from-param", serving.ParamTimeout: int64(50_000)} // 50 ms
	req.Outputs = []string{"y"}
	res, err := s.Infer(ctx, tg, req, oip.Call{Key: "from-header", Timeout: time.Second, MaxTimeout: time.Minute,
		Classify: []serving.Classification{{Output: "y", K: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if seen.Model != "c" || seen.Version != "4" || seen.Key != "from-param" {
		t.Errorf("the chain saw model %q version %q key %q", seen.Model, seen.Version, seen.Key)
	}
	if deadline <= 0 || deadline > 50*time.Millisecond {
		t.Errorf("deadline %v, want the parameter's 50ms, the earliest", deadline)
	}
	if got, _ := res.Outputs[0].Strings(); len(res.Outputs) != 1 || fmt.Sprint(got) != "[0.700000:1:b 0.200000:2:c]" {
		t.Errorf("outputs %v: want y only, classified", got)
	}
	req.Outputs = []string{"nope"}
	if _, err := s.Infer(ctx, tg, req, oip.Call{}); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("an output the answer lacks: %v", err)
	}

	_ = s.Handle("panics", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { panic("secret") }))
	tg, _ = s.Resolve("panics", "")
	if _, err := s.Infer(ctx, tg, servingtest.Rows(1, 1, 0), oip.Call{}); serving.CodeOf(err) != serving.Internal || strings.Contains(err.Error(), "secret") {
		t.Errorf("a panic: %v, want an Internal error that does not show it", err)
	}
	if !strings.Contains(logs.String(), `"panic":"secret"`) {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
	_ = s.Handle("nil", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, nil }))
	tg, _ = s.Resolve("nil", "")
	if _, err := s.Infer(ctx, tg, servingtest.Rows(1, 1, 0), oip.Call{}); serving.CodeOf(err) != serving.Internal {
		t.Errorf("no answer and no error: %v", err)
	}
	closed := servingtest.Linear(1)
	closed.Close()
	_ = s.Handle("closed", closed)
	tg, _ = s.Resolve("closed", "")
	if _, err := s.Infer(ctx, tg, servingtest.Rows(1, 1, 0), oip.Call{}); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("a model not ready: %v", err)
	}
}

// timed is a model that reports through serving.Timing what a batched
// backend would: its queue wait and, when it ran, the run.
func timed(queue time.Duration, run *serving.Execution, hit bool) *servingtest.Fake {
	lin := servingtest.Linear(1)
	md, _ := serving.MetadataOf(lin)
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		tm := serving.TimingOf(ctx)
		if hit {
			tm.CacheResult(serving.CacheHit, time.Microsecond)
			return lin.Predict(ctx, req)
		}
		tm.CacheResult(serving.CacheMiss, 2*time.Microsecond)
		tm.AddQueue(queue)
		if run != nil {
			tm.Executed(*run)
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
}

// Statistics count what the layers reported: a miss is a request with its
// queue and compute, and its run in batch_stats; a hit counts as a hit
// only; a failure as a failure; a Predictor that reports nothing as one run
// of its rows.
func TestStatistics(t *testing.T) {
	s := oip.NewServer()
	run := serving.Execution{Rows: 4, ComputeInput: 1, ComputeInfer: 10, ComputeOutput: 2}
	_ = s.Handle("m", timed(5, &run, false), oip.Version("1"))
	_ = s.Handle("m", timed(0, nil, true), oip.Version("2"))
	_ = s.Handle("plain", servingtest.Linear(1))
	ctx := context.Background()
	infer := func(model, version string, rows int) error {
		tg, err := s.Resolve(model, version)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Infer(ctx, tg, servingtest.Rows(1, rows, 0), oip.Call{})
		return err
	}
	for range 3 {
		_ = infer("m", "1", 4)
	}
	_ = infer("m", "2", 1)
	_ = infer("plain", "", 3)
	tg, _ := s.Resolve("m", "1")
	req := servingtest.Rows(1, 1, 0)
	req.Outputs = []string{"nope"}
	if _, err := s.Infer(ctx, tg, req, oip.Call{}); err == nil {
		t.Fatal("want a failure")
	}

	st, err := s.Statistics("m", "")
	if err != nil || len(st) != 2 || st[0].Version != "1" || st[1].Version != "2" {
		t.Fatalf("statistics %+v %v", st, err)
	}
	v1, v2 := st[0], st[1]
	in := v1.Inference
	if in.Success.Count != 3 || in.Fail.Count != 1 || in.Queue != (oip.Stat{Count: 3, NS: 15}) ||
		in.ComputeInfer != (oip.Stat{Count: 3, NS: 30}) || in.CacheMiss != (oip.Stat{Count: 3, NS: 6000}) || in.CacheHit.Count != 0 {
		t.Errorf("version 1: %+v", in)
	}
	// The failed request ran too (its output selection failed after), so
	// its run is counted: 4 runs, 3 successful requests of 4 rows.
	if v1.InferenceCount != 12 || v1.ExecutionCount != 4 || len(v1.Batches) != 1 ||
		v1.Batches[0].Size != 4 || v1.Batches[0].ComputeInfer != (oip.Stat{Count: 4, NS: 40}) {
		t.Errorf("version 1 counts: inference %d execution %d batches %+v", v1.InferenceCount, v1.ExecutionCount, v1.Batches)
	}
	if v1.LastInference.IsZero() || in.Success.NS == 0 {
		t.Errorf("version 1 times: last %v success %+v", v1.LastInference, in.Success)
	}
	if h := v2.Inference; h.Success.Count != 1 || h.CacheHit != (oip.Stat{Count: 1, NS: 1000}) || h.Queue.Count != 0 || v2.ExecutionCount != 0 || v2.InferenceCount != 0 {
		t.Errorf("version 2, a cache hit: %+v, %d runs, %d rows", h, v2.ExecutionCount, v2.InferenceCount)
	}
	plain, _ := s.Statistics("plain", "")
	if p := plain[0]; p.Version != "" || p.ExecutionCount != 1 || p.InferenceCount != 3 || p.Inference.Queue.Count != 1 || len(p.Batches) != 1 || p.Batches[0].Size != 3 {
		t.Errorf("a Predictor that reports nothing: %+v", p)
	}
	all, _ := s.Statistics("", "")
	if len(all) != 3 {
		t.Errorf("every model's statistics: %d entries, want 3", len(all))
	}
	if _, err := s.Statistics("nope", ""); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := s.Statistics("", "1"); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("a version without a model: %v", err)
	}
	s.Remove("m", "1")
	if st, _ := s.Statistics("m", ""); len(st) != 1 || st[0].Version != "2" {
		t.Errorf("after removing version 1: %+v", st)
	}
}

// A client cannot grow a version's batch statistics without bound by
// sending ever new row counts to a model that does not batch: past the
// cap, runs count under size 0.
func TestStatisticsBatchSizesAreBounded(t *testing.T) {
	s := oip.NewServer()
	_ = s.Handle("m", servingtest.Linear(1))
	tg, _ := s.Resolve("m", "")
	for rows := 1; rows <= 1100; rows++ {
		if _, err := s.Infer(context.Background(), tg, servingtest.Rows(1, rows, 0), oip.Call{}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.Statistics("m", "")
	b := st[0].Batches
	if len(b) != 1025 || b[0].Size != 0 || b[0].ComputeInfer.Count != 1100-1024 || st[0].ExecutionCount != 1100 {
		t.Errorf("%d sizes kept, first %+v, %d runs", len(b), b[0], st[0].ExecutionCount)
	}
}

// A model served without a configuration is described as its chain serves
// it: batching only when a layer batches (dims then without the batch
// dimension), the cache, the device, the versions, Triton's type names.
func TestSynthesizeConfig(t *testing.T) {
	md := serving.Metadata{Platform: "onnxruntime_onnx", Device: "cuda:1",
		Inputs:  []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, 8}}},
		Outputs: []serving.TensorSpec{{Name: "label", DataType: serving.Bytes, Shape: []int64{-1}}}}
	c := oip.SynthesizeConfig("m", md, []string{"2", "10"})
	if c.GetMaxBatchSize() != 0 || c.GetDynamicBatching() != nil || fmt.Sprint(c.GetInput()[0].GetDims()) != "[-1 8]" {
		t.Errorf("a chain that does not batch: %v", c)
	}
	if c.GetBackend() != "onnxruntime" || c.GetOutput()[0].GetDataType() != mc.DataType_TYPE_STRING ||
		c.GetInstanceGroup()[0].GetKind() != mc.ModelInstanceGroup_KIND_GPU || fmt.Sprint(c.GetInstanceGroup()[0].GetGpus()) != "[1]" ||
		fmt.Sprint(c.GetVersionPolicy().GetSpecific().GetVersions()) != "[2 10]" || c.GetModelTransactionPolicy() == nil {
		t.Errorf("config %v", c)
	}
	md.MaxBatchRows, md.BatchDelay, md.ResponseCache, md.Device = 32, 2*time.Millisecond, true, "cpu"
	c = oip.SynthesizeConfig("m", md, []string{"a"})
	if c.GetMaxBatchSize() != 32 || c.GetDynamicBatching().GetMaxQueueDelayMicroseconds() != 2000 ||
		fmt.Sprint(c.GetInput()[0].GetDims()) != "[8]" || !c.GetResponseCache().GetEnable() ||
		c.GetInstanceGroup()[0].GetKind() != mc.ModelInstanceGroup_KIND_CPU || c.GetVersionPolicy() != nil {
		t.Errorf("a batched, cached chain: %v", c)
	}
}

// Repository control is off unless enabled; its authoriser's refusals
// keep Unauthenticated and make anything else PermissionDenied; without a
// repository the index lists the table and load is Unimplemented.
func TestRepositoryControl(t *testing.T) {
	ctx := context.Background()
	req := httptest.NewRequest(http.MethodPost, "/v2/repository/index", nil)
	off := oip.NewServer()
	if _, err := off.AuthorizeRepository(req); !errors.Is(err, oip.ErrRepositoryControlOff) {
		t.Errorf("control off: %v", err)
	}
	if slices.Contains(off.Extensions(), "model_repository") || !slices.Contains(off.Extensions(), "statistics") {
		t.Errorf("extensions with control off: %v", off.Extensions())
	}
	unauth := serving.Errorf(serving.Unauthenticated, "no token")
	for _, c := range []struct {
		err  error
		code serving.Code
	}{{nil, serving.OK}, {unauth, serving.Unauthenticated}, {errors.New("not you"), serving.PermissionDenied}} {
		s := oip.NewServer(oip.WithLogger(slog.New(slog.DiscardHandler)),
			oip.WithRepositoryControl(func(*http.Request) (string, error) { return "", c.err }))
		who, err := s.AuthorizeRepository(req)
		if serving.CodeOf(err) != c.code || err == nil && who != "anonymous" {
			t.Errorf("authoriser error %v: %q %v, want code %v", c.err, who, err, c.code)
		}
	}
	s := oip.NewServer(oip.WithRepositoryControl(func(*http.Request) (string, error) { return "admin", nil }))
	_ = s.Handle("m", servingtest.Linear(1), oip.Version("1"))
	idx, err := s.RepositoryIndex(ctx, false)
	if err != nil || fmt.Sprint(idx) != "[{m 1 READY }]" || !slices.Contains(s.Extensions(), "model_repository") {
		t.Errorf("index of the table: %v %v", idx, err)
	}
	if err := s.LoadModel(ctx, "admin", "m", nil); serving.CodeOf(err) != serving.Unimplemented {
		t.Errorf("load without a repository: %v", err)
	}
}

// Statistics are safe under concurrent calls, and the counts add up.
func TestStatisticsConcurrent(t *testing.T) {
	s := oip.NewServer()
	_ = s.Handle("m", servingtest.Linear(1), oip.Version("1"))
	done := make(chan struct{})
	const workers, each = 4, 50
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				tg, _ := s.Resolve("m", "")
				_, _ = s.Infer(context.Background(), tg, servingtest.Rows(1, 1, 0), oip.Call{})
				_, _ = s.Statistics("", "")
			}
		}()
	}
	for range workers {
		<-done
	}
	st, _ := s.Statistics("m", "1")
	if st[0].Inference.Success.Count != workers*each {
		t.Errorf("%d successes, want %d", st[0].Inference.Success.Count, workers*each)
	}
}
