package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/internal/redistest"
)

const testHMACKey = "0123456789abcdef0123456789abcdef"

// A shared Redis behind -repo (issue 18, row 8): replicas on the same
// weights share answers through it; replicas on other weights under the same
// model and version (a rolling update) never see each other's; and a hot
// reload never serves the replaced weights' answers, from L1 or Redis.
// Redis runs with a password, as deploy/k8s runs it.
func TestRedisCacheWithRepository(t *testing.T) {
	srv := redistest.Start(t)
	const password = "s3cret-for-the-test"
	if got := srv.Do("CONFIG", "SET", "requirepass", password); got != "+OK" {
		t.Fatalf("CONFIG SET requirepass: %s", got)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: password})
	defer rdb.Close()
	ctx := context.Background()
	keys := func() int { return len(rdb.Keys(ctx, "servekit:cache:*").Val()) }

	replica := func(bias float32) (models string, dir string, stop func()) {
		dir = t.TempDir()
		put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, bias))
		base, _, stop := start(t, "-repo", dir, "-repo-poll", "5ms", "-cache", "-cache-redis", srv.Addr,
			"-cache-redis-password", password, "-cache-redis-hmac-key", testHMACKey)
		return base, dir, stop
	}
	oldA, dirA, stopA := replica(0)
	defer stopA()
	newB, _, stopB := replica(1)
	defer stopB()

	_, _, sOld := infer(t, oldA+"/v2/models/fraud/infer")
	waitFor(t, "the old replica's entry in Redis", func() bool { return keys() == 1 })
	_, _, sNew := infer(t, newB+"/v2/models/fraud/infer")
	if sNew == sOld {
		t.Fatalf("the replica on new weights answered %v, the old weights' answer", sNew)
	}
	waitFor(t, "the new replica's own entry", func() bool { return keys() == 2 })

	// A third replica on the old weights answers from Redis.
	oldC, _, stopC := replica(0)
	defer stopC()
	if _, _, s := infer(t, oldC+"/v2/models/fraud/infer"); s != sOld {
		t.Errorf("a replica on the old weights answered %v, want %v", s, sOld)
	}
	if hits := l2Hits(t, oldC); hits != 1 {
		t.Errorf("the third replica counted %v L2 hits, want 1: -cache-redis unused with -repo?", hits)
	}

	// A hot reload of replica A to other weights: its next answer is the new
	// model's, though L1 and Redis hold the old one under the same version.
	put(t, filepath.Join(dirA, "fraud", "1", "model.onnx"), fraudVariant(t, 2))
	waitFor(t, "the reload's answer", func() bool {
		_, _, s := infer(t, oldA+"/v2/models/fraud/infer")
		return s != sOld
	})
	_, _, sReloaded := infer(t, oldA+"/v2/models/fraud/infer")
	if sReloaded == sNew {
		t.Errorf("after the reload A answered %v, replica B's answer", sReloaded)
	}
	if _, _, s := infer(t, oldC+"/v2/models/fraud/infer"); s != sOld {
		t.Errorf("replica C, still on the old weights, answered %v after A's reload, want %v", s, sOld)
	}
}

// l2Hits reads servekit_cache_hits_total{tier="l2"} from a server's /metrics.
func l2Hits(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0.0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "servekit_cache_hits_total{") && strings.Contains(line, `tier="l2"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

// The shared tier refuses to start half-configured: without its HMAC key
// (unless told to run unauthenticated), or without -cache.
func TestRedisCacheFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-cache", "-cache-redis", "127.0.0.1:1"},
		{"-cache", "-cache-redis", "127.0.0.1:1", "-cache-redis-hmac-key", "short"},
		{"-cache", "-cache-redis", "127.0.0.1:1", "-cache-redis-hmac-key", testHMACKey, "-cache-redis-unauthenticated"},
		{"-cache-redis", "127.0.0.1:1", "-cache-redis-hmac-key", testHMACKey},
	} {
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "cache") {
			t.Errorf("%q: %v, want an error about the cache", args, err)
		}
	}
}
