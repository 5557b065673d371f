package repository_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/servekit/servekit/repository"
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
