package repository_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// BenchmarkSyncUnchanged is the cost of one poll of a repository where
// nothing changed: what the watcher spends every interval. 20 models of 3
// versions each, all loaded.
func BenchmarkSyncUnchanged(b *testing.B) {
	const models, versions = 20, 3
	files := map[string]string{}
	for m := range models {
		files[fmt.Sprintf("m%d/config.json", m)] = `{"version_policy": {"all": {}}}`
		for v := 1; v <= versions; v++ {
			files[fmt.Sprintf("m%d/%d/model.onnx", m, v)] = "ok"
		}
	}
	root := tree(b, files)
	f := newLoader()
	r, err := repository.Open(context.Background(), root, f.Load, repository.WithPollInterval(0), repository.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	loads := f.loads.Load()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if f.loads.Load() != loads {
		b.Fatal("an unchanged repository was reloaded")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/(models*versions), "µs/version")
}

// BenchmarkConfiguredPredict is what a configuration's input, output and
// max_batch_size checks add to a request (Predict on the router of a
// servingtest.Linear model), against the same model without them.
func BenchmarkConfiguredPredict(b *testing.B) {
	for _, bc := range []struct{ name, config string }{
		{"plain", ``},
		{"configured", `max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]`},
		{"reshaped", `max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape { shape: [ 4 ] } } ]`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			root := tree(b, map[string]string{"m/1/model.onnx": "ok", "m/config.pbtxt": bc.config})
			f := newBatchableLoader().loader()
			f.make = func() serving.Predictor { return servingtest.Linear(4) }
			r, err := repository.Open(context.Background(), root, f.Load, repository.WithPollInterval(0), repository.WithLogger(quiet))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rt, _ := r.Router("m")
			req := servingtest.Rows(4, 2, 0)
			if bc.name == "reshaped" {
				x := req.Inputs[0]
				x.Shape = []int64{2, 2, 2}
				req.Inputs[0] = x
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.Predict(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
