package repository_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A repository with two versions of a model, the newer one warmed before it
// serves; the loader stands in for onnx.Load with a servingtest fake.
func Example() {
	root, err := os.MkdirTemp("", "models")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	for path, content := range map[string]string{
		"linear/1/model.onnx": "first",
		"linear/2/model.onnx": "second",
		"linear/config.json": `{
			"version_policy": {"all": {}},
			"model_warmup": [{"name": "two rows", "count": 2, "inputs": {
				"x": {"data_type": "FP32", "dims": [2, 3], "random_data": true}
			}}]
		}`,
	} {
		_ = os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755)
		_ = os.WriteFile(filepath.Join(root, path), []byte(content), 0o644)
	}

	warmups := map[string]int{}
	load := func(_ context.Context, v repository.Version) (serving.Predictor, error) {
		// Real code: return onnx.Load(v.Path, onnx.WithName(v.Model), onnx.WithVersion(v.Version))
		model := servingtest.Linear(3)
		return serving.PredictorFunc(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
			if warm, _ := req.Params.Bool(serving.ParamCacheBypass); warm {
				warmups[v.Version]++ // loads of one model are serial here
			}
			return model.Predict(ctx, req)
		}), nil
	}
	repo, err := repository.Open(context.Background(), root, load,
		repository.WithPollInterval(0), // tests call Sync; servers keep the watcher
		repository.WithLoadConcurrency(1),
		repository.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer repo.Close()

	for _, v := range repo.Status().Models[0].Versions {
		fmt.Printf("version %s: %s, warmed %d times\n", v.Version, v.State, warmups[v.Version])
	}
	router, _ := repo.Router("linear")
	resp, err := router.Predict(context.Background(), servingtest.Rows(3, 1, 0))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("unversioned request answered by version", resp.Version)
	// Output:
	// version 1: ready, warmed 2 times
	// version 2: ready, warmed 2 times
	// unversioned request answered by version 2
}

// A Triton config.pbtxt: what the repository applies itself (the version
// policy), what it hands the loader in servekit's terms (batching), and
// what servekit ignores, with why.
func ExampleParseConfigText() {
	c, err := repository.ParseConfigText([]byte(`
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { latest: { num_versions: 2 } }
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 100 }
instance_group [ { kind: KIND_CPU count: 2 rate_limiter { priority: 2 } } ]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := c.Batching()
	fmt.Println("versions:", c.VersionPolicy)
	fmt.Println("batching:", b.MaxBatchSize, "rows, preferred", b.PreferredBatchSizes, "waiting at most", b.MaxQueueDelay)
	for _, f := range c.Ignored {
		fmt.Println("ignored:", f)
	}
	// Output:
	// versions: latest 2
	// batching: 8 rows, preferred [4] waiting at most 100µs
	// ignored: instance_group[0].rate_limiter: Triton's rate limiter is not implemented
}
