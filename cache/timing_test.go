package cache_test

import (
	"context"
	"testing"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The cache reports its outcome through the request's serving.Timing: a
// miss (the model ran, and reported its run) and then a hit (no run), and
// the layer says it caches, for the model configuration's response_cache.
func TestTimingHitAndMiss(t *testing.T) {
	c, err := cache.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lin := servingtest.Linear(2)
	md, _ := serving.MetadataOf(lin)
	model := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		serving.TimingOf(ctx).Executed(serving.Execution{Rows: req.Rows()})
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
	p := c.Middleware()(model)
	for i, want := range []serving.CacheOutcome{serving.CacheMiss, serving.CacheHit} {
		var tm serving.Timing
		if _, err := p.Predict(serving.WithTiming(context.Background(), &tm), servingtest.Rows(2, 1, 7)); err != nil {
			t.Fatal(err)
		}
		v := tm.Values()
		if v.Cache != want || len(v.Executions) != 1-i {
			t.Errorf("request %d: cache %v with %d executions, want %v with %d", i, v.Cache, len(v.Executions), want, 1-i)
		}
	}
	if md, _ := serving.MetadataOf(p); !md.ResponseCache || md.Name != "linear" {
		t.Errorf("metadata %+v, want the model's with ResponseCache", md)
	}
}
