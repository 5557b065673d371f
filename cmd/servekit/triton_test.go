package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// gated is a servingtest.Linear(4) model that records each call and holds
// it until the test lets it go (nil gate: no wait).
type gated struct {
	linear *servingtest.Fake
	gate   chan struct{}
	mu     sync.Mutex
	calls  []*serving.Request // guarded by mu
}

func newGated(gate chan struct{}) *gated { return &gated{linear: servingtest.Linear(4), gate: gate} }

func (g *gated) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	g.mu.Lock()
	g.calls = append(g.calls, req.Clone())
	g.mu.Unlock()
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.linear.Predict(ctx, req)
}

func (g *gated) Metadata() serving.Metadata { return g.linear.Metadata() }

func (g *gated) seen() []*serving.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// chainFor builds a version chain the way the -repo loader does, from a
// config.pbtxt, with the flags' defaults, Triton's batching rules, and no
// admission control (so every request reaches the batcher at once).
func chainFor(t *testing.T, model serving.Predictor, pbtxt string) (serving.Predictor, *batch.Batcher) {
	t.Helper()
	o, err := parseServe([]string{"--model-repository", "models", "--batch-adaptive=false", "--max-inflight=-1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := repository.ParseConfigText([]byte(pbtxt))
	if err != nil {
		t.Fatal(err)
	}
	p, err := configChain(model, o, nil, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serving.Close(p) })
	var b *batch.Batcher
	for q := p; q != nil; {
		if bt, ok := q.(*batch.Batcher); ok {
			b = bt
		}
		w, ok := q.(serving.Wrapper)
		if !ok {
			break
		}
		q = w.Unwrap()
	}
	if b == nil {
		t.Fatal("no batcher in the chain")
	}
	return p, b
}

func row(first float32, priority int) *serving.Request {
	req := servingtest.Rows(4, 1, first)
	if priority > 0 {
		req.Params = serving.Params{serving.ParamPriority: priority}
	}
	return req
}

// dynamic_batching takes effect: preferred_batch_size runs four queued
// requests as one batch long before the queue delay; the queue policy's
// timeout, queue size, priorities and instance count act as in Triton.
func TestConfigBatching(t *testing.T) {
	t.Run("preferred size", func(t *testing.T) {
		m := newGated(nil)
		p, _ := chainFor(t, m, `max_batch_size: 8
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 30000000 }`)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				resp, err := p.Predict(context.Background(), row(float32(10*i), 0))
				if y, _ := resp.Output("y"); err != nil || fmt.Sprint(y.Shape) != "[1 4]" {
					t.Errorf("request %d: %v %v", i, y.Shape, err)
				}
			})
		}
		wg.Wait()
		if calls := m.seen(); len(calls) != 1 || calls[0].Rows() != 4 {
			t.Errorf("the model ran %d times; want once, with 4 rows", len(calls))
		}
	})
	t.Run("default timeout", func(t *testing.T) {
		m := newGated(nil)
		p, b := chainFor(t, m, `max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 30000000 default_queue_policy { default_timeout_microseconds: 50000 } }`)
		_, err := p.Predict(context.Background(), row(0, 0))
		if serving.CodeOf(err) != serving.DeadlineExceeded || len(m.seen()) != 0 || b.Stats().Rejected.Deadline != 1 {
			t.Errorf("a request past its default timeout: %v, %d model calls, %+v", err, len(m.seen()), b.Stats().Rejected)
		}
	})
	t.Run("queue size", func(t *testing.T) {
		m := newGated(nil)
		p, b := chainFor(t, m, `max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 30000000 default_queue_policy { max_queue_size: 2 } }`)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { _, _ = p.Predict(ctx, row(float32(i), 0)) })
		}
		poll.Until(t, "two queued requests", func() bool { return b.Stats().QueuedReqs == 2 })
		_, err := p.Predict(context.Background(), row(9, 0))
		if serving.CodeOf(err) != serving.ResourceExhausted {
			t.Errorf("a third request with max_queue_size 2: %v, want ResourceExhausted", err)
		}
		cancel()
		wg.Wait()
	})
	t.Run("priorities", func(t *testing.T) {
		m, release := newGatedFor(t)
		// One row a batch, two levels with 2 the default, one instance:
		// while a batch runs, a later request at level 1 overtakes an
		// earlier one at the default level.
		p, b := chainFor(t, m, `max_batch_size: 1
dynamic_batching { priority_levels: 2 default_priority_level: 2 }
instance_group [ { kind: KIND_CPU count: 1 } ]`)
		t.Cleanup(release) // before the chain's Close, which waits for the run
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = p.Predict(context.Background(), row(1, 0)) })
		poll.Until(t, "the first batch running", func() bool { return len(m.seen()) == 1 })
		wg.Go(func() { _, _ = p.Predict(context.Background(), row(2, 0)) })
		poll.Until(t, "one queued", func() bool { return b.Stats().QueuedReqs == 1 })
		wg.Go(func() { _, _ = p.Predict(context.Background(), row(3, 1)) })
		poll.Until(t, "two queued", func() bool { return b.Stats().QueuedReqs == 2 })
		release()
		wg.Wait()
		var order []float32
		for _, c := range m.seen() {
			x, _ := c.Input("x")
			v, _ := serving.Values[float32](x)
			order = append(order, v[0])
		}
		if !slices.Equal(order, []float32{1, 3, 2}) {
			t.Errorf("run order %v, want the priority-1 request (3) before the default-level one queued earlier (2)", order)
		}
	})
	t.Run("instances", func(t *testing.T) {
		m, release := newGatedFor(t)
		p, b := chainFor(t, m, `max_batch_size: 1 dynamic_batching { } instance_group [ { count: 2 kind: KIND_CPU } ]`)
		t.Cleanup(release)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { _, _ = p.Predict(context.Background(), row(float32(i), 0)) })
		}
		poll.Until(t, "two batches running at once (count: 2)", func() bool { return b.Stats().InFlight == 2 })
		release()
		wg.Wait()
	})
}

// newGatedFor is a gated model and the function that lets its calls go
// (idempotent).
func newGatedFor(t *testing.T) (*gated, func()) {
	gate := make(chan struct{})
	var once sync.Once
	return newGated(gate), func() { once.Do(func() { close(gate) }) }
}

func TestConfigDeviceAndCache(t *testing.T) {
	parse := func(s string) *repository.Config {
		c, err := repository.ParseConfigText([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	o, _ := parseServe([]string{"--model-repository", "models"}, io.Discard)
	onGPU, _ := parseServe([]string{"--model-repository", "models", "--cuda", "1"}, io.Discard)
	for _, tc := range []struct {
		o      *options
		config string
		want   int
	}{
		{o, ``, -1},
		{onGPU, ``, 1},
		{onGPU, `instance_group [ { kind: KIND_CPU } ]`, -1},
		{o, `instance_group [ { kind: KIND_GPU } ]`, 0},
		{onGPU, `instance_group [ { kind: KIND_GPU gpus: [ 2 ] } ]`, 2},
		{onGPU, `instance_group [ { kind: KIND_AUTO count: 2 } ]`, 1},
	} {
		if got := deviceFor(tc.o, parse(tc.config)); got != tc.want {
			t.Errorf("--cuda %d, %q: device %d, want %d", tc.o.gpu.device, tc.config, got, tc.want)
		}
	}
	withCache, _ := parseServe([]string{"--model-repository", "models", "--cache"}, io.Discard)
	for _, tc := range []struct {
		o      *options
		config string
		want   bool
	}{
		{o, ``, false},
		{withCache, ``, true},
		{o, `response_cache { enable: true }`, true},
		{withCache, `response_cache { enable: false }`, false},
	} {
		if got := cacheFor(tc.o, parse(tc.config)); got != tc.want {
			t.Errorf("--cache=%v, %q: cache %v", tc.o.cache, tc.config, got)
		}
	}
	if err := checkPlatform(repository.Version{Model: "m", Config: parse(`platform: "tensorrt_plan"`)}); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("a TensorRT model: %v", err)
	}
}

// A Triton model repository served by -repo: the settings of each
// config.pbtxt take effect (batching, cache, warm-up, reshape, timeout),
// and -strict-model-config refuses what servekit would ignore.
func TestTritonRepositoryServer(t *testing.T) {
	dir := t.TempDir()
	addsub, err := onnxbuild.AddSub(onnxbuild.Int32, 16)
	if err != nil {
		t.Fatal(err)
	}
	w := []float32{1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0, -1, 0, 1}
	classifier, err := onnxbuild.PooledClassifier(3, 4, 4, w, []float32{0, 0.1, -0.1, 0.2, 0})
	if err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(dir, "simple", "config.pbtxt"), []byte(`
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] } ]
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 30000000 }
instance_group [ { kind: KIND_CPU count: 1 } ]
response_cache { enable: true }
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
model_warmup [ { name: "four rows" batch_size: 4 inputs [
  { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } },
  { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 16 ] random_data: true } } ] } ]
`))
	put(t, filepath.Join(dir, "simple", "1", "model.onnx"), addsub)
	put(t, filepath.Join(dir, "timeout", "config.pbtxt"), []byte(`max_batch_size: 8
dynamic_batching { max_queue_delay_microseconds: 30000000 default_queue_policy { default_timeout_microseconds: 100000 } }`))
	put(t, filepath.Join(dir, "timeout", "1", "model.onnx"), addsub)
	put(t, filepath.Join(dir, "densenet_onnx", "config.pbtxt"), []byte(`
name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size : 1
input [ { name: "data_0" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 3, 4, 4 ] } ]
output [ { name: "fc6_1" data_type: TYPE_FP32 dims: [ 5 ] reshape { shape: [ 5, 1, 1 ] } label_filename: "densenet_labels.txt" } ]
`))
	put(t, filepath.Join(dir, "densenet_onnx", "1", "model.onnx"), classifier)

	base, _, stop := start(t, "--model-repository", dir, "--model-control-mode", "none", "--batch-adaptive=false")
	defer stop()
	models := base + "/v2/models/"
	for _, m := range []string{"simple", "timeout", "densenet_onnx"} {
		if code := httpStatus(t, models+m+"/versions/1/ready"); code != 200 {
			t.Fatalf("%s: ready %d", m, code)
		}
	}
	post := func(model, body string) (int, string) {
		resp, err := http.Post(models+model+"/infer", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	addsubBody := func(k int) string {
		a := strings.Repeat(strconv.Itoa(k)+",", 15) + strconv.Itoa(k)
		return `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[` + a + `]},` +
			`{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[` + strings.Repeat("1,", 15) + `1]}]}`
	}

	// Batching: four different requests meet their preferred size at once,
	// as the warm-up's four rows did: two batches of four rows in all.
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() {
			code, body := post("simple", addsubBody(k))
			if want := fmt.Sprintf(`"data":[%d,`, k+1); code != 200 || !strings.Contains(body, want) {
				t.Errorf("simple %d: %d %s", k, code, body)
			}
		})
	}
	wg.Wait()
	metrics := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := metrics()
	if count, sum := metricValue(m, "servekit_batch_size", "_count", `model="simple"`), metricValue(m, "servekit_batch_size", "_sum", `model="simple"`); count != 2 || sum != 8 {
		t.Errorf("simple's batches: %v batches, %v rows; want 2 of 4 rows (warm-up and requests)", count, sum)
	}
	// The cache answers a request it has seen.
	if code, _ := post("simple", addsubBody(2)); code != 200 {
		t.Errorf("repeat: %d", code)
	}
	if hits := metricValue(metrics(), "servekit_cache_hits", "_total", `model="simple"`); hits != 1 {
		t.Errorf("cache hits %v, want 1 (response_cache enabled)", hits)
	}

	// The default timeout ends a request that would wait 30 s for company.
	if code, body := post("timeout", addsubBody(1)); code != http.StatusGatewayTimeout {
		t.Errorf("a request past default_timeout_microseconds: %d %s, want 504", code, body)
	}

	// The output reshape: clients see [1, 5], the model gives [1, 5, 1, 1].
	img := strings.TrimSuffix(strings.Repeat("0.5,", 48), ",")
	code, body := post("densenet_onnx", `{"inputs":[{"name":"data_0","shape":[1,3,4,4],"datatype":"FP32","data":[`+img+`]}]}`)
	if code != 200 || !strings.Contains(body, `"shape":[1,5]`) {
		t.Errorf("densenet: %d %s", code, body)
	}
}

// -strict-model-config refuses a configuration with a field servekit does
// not implement; without it the model serves.
func TestStrictModelConfig(t *testing.T) {
	dir := t.TempDir()
	put(t, filepath.Join(dir, "fraud", "config.pbtxt"), []byte(`max_batch_size: 64
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] label_filename: "labels.txt" } ]`))
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	for _, strict := range []bool{false, true} {
		base, _, stop := start(t, "--model-repository", dir, "--model-control-mode", "none", fmt.Sprintf("--strict-model-config=%v", strict))
		code, _, _ := postInfer(t, base+"/v2/models/fraud/infer")
		stop()
		if want := map[bool]int{false: 200, true: 503}[strict]; code != want {
			t.Errorf("strict %v: infer %d, want %d", strict, code, want)
		}
	}
}

// metricValue reads one sample of the Prometheus text: the series name
// (any unit suffix) + suffix, whose labels include label.
func metricValue(text, name, suffix, label string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\w*` + regexp.QuoteMeta(suffix) + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if strings.Contains(m[1], label) {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return -1
}
