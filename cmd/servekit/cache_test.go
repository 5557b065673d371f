package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/internal/poll"
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
		base, _, stop := start(t, "--model-repository", dir, "--model-control-mode", "poll", "--repository-poll-secs", "0.005", "--cache", "--cache-redis", srv.Addr,
			"--cache-redis-password", password, "--cache-redis-hmac-key", testHMACKey,
			"--cache-redis-timeout", "10s") // a cold connection's AUTH on a loaded runner can take longer than the default 50 ms: a miss, not the hit asserted
		return base, dir, stop
	}
	oldA, dirA, stopA := replica(0)
	defer stopA()
	newB, _, stopB := replica(1)
	defer stopB()

	_, _, sOld := postInfer(t, oldA+"/v2/models/fraud/infer")
	poll.Until(t, "the old replica's entry in Redis", func() bool { return keys() == 1 })
	_, _, sNew := postInfer(t, newB+"/v2/models/fraud/infer")
	if sNew == sOld {
		t.Fatalf("the replica on new weights answered %v, the old weights' answer", sNew)
	}
	poll.Until(t, "the new replica's own entry", func() bool { return keys() == 2 })

	// A third replica on the old weights answers from Redis.
	oldC, _, stopC := replica(0)
	defer stopC()
	if _, _, s := postInfer(t, oldC+"/v2/models/fraud/infer"); s != sOld {
		t.Errorf("a replica on the old weights answered %v, want %v", s, sOld)
	}
	if hits := metric(t, oldC, "servekit_cache_hits_total", `tier="l2"`); hits != 1 {
		t.Errorf("the third replica counted %v L2 hits, want 1: -cache-redis unused with -repo?", hits)
	}

	// A hot reload of replica A to other weights: its next answer is the new
	// model's, though L1 and Redis hold the old one under the same version.
	put(t, filepath.Join(dirA, "fraud", "1", "model.onnx"), fraudVariant(t, 2))
	poll.Until(t, "the reload's answer", func() bool {
		_, _, s := postInfer(t, oldA+"/v2/models/fraud/infer")
		return s != sOld
	})
	_, _, sReloaded := postInfer(t, oldA+"/v2/models/fraud/infer")
	if sReloaded == sNew {
		t.Errorf("after the reload A answered %v, replica B's answer", sReloaded)
	}
	if _, _, s := postInfer(t, oldC+"/v2/models/fraud/infer"); s != sOld {
		t.Errorf("replica C, still on the old weights, answered %v after A's reload, want %v", s, sOld)
	}
}

// The shared tier refuses to start half-configured: without its HMAC key
// (unless told to run unauthenticated), or without --cache.
func TestRedisCacheFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--cache", "--cache-redis", "127.0.0.1:1"},
		{"--cache", "--cache-redis", "127.0.0.1:1", "--cache-redis-hmac-key", "short"},
		{"--cache", "--cache-redis", "127.0.0.1:1", "--cache-redis-hmac-key", testHMACKey, "--cache-redis-unauthenticated"},
		{"--cache-redis", "127.0.0.1:1", "--cache-redis-hmac-key", testHMACKey},
	} {
		err := serveArgs(context.Background(), append(args, "--model", "fraud=../../testdata/models/fraud.onnx"), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "cache") {
			t.Errorf("%q: %v, want an error about the cache", args, err)
		}
	}
}

// Row 7 of issue 18, against the server as the issue ran it: an entry
// planted in the shared Redis, either an honest one with its answer edited
// or a ~120-byte one declaring a BYTES output of 2^31 elements (signed with
// the right key, as by someone who stole it), is a miss on the replica that
// reads it: the model answers, the entry is counted as rejected and
// replaced, and the request allocates what an honest miss does, not the
// 48 GiB the entry claims.
func TestRedisPoisonedEntryIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	args := []string{"--cache", "--cache-redis", srv.Addr, "--cache-redis-hmac-key", testHMACKey}
	first, _, stopFirst := start(t, args...)
	defer stopFirst()
	_, _, honest := postInfer(t, first+"/v2/models/fraud/infer")
	var name string
	poll.Until(t, "the entry in Redis", func() bool {
		keys := rdb.Keys(ctx, "servekit:cache:*").Val()
		if len(keys) == 1 {
			name = keys[0]
		}
		return name != ""
	})
	entry, err := rdb.Get(ctx, name).Bytes()
	if err != nil {
		t.Fatal(err)
	}

	// The value layout (cache/codec.go): "SKC2", expiry u64, key (u32
	// length, bytes), model, version, outputs, then a 32-byte HMAC tag.
	keyEnd := 4 + 8 + 4 + int(binary.LittleEndian.Uint32(entry[12:]))
	edited := bytes.Clone(entry)
	score := binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(honest)))
	i := bytes.LastIndex(edited[:len(edited)-32], score)
	if i < keyEnd {
		t.Fatalf("the score %v is not in the entry", honest)
	}
	binary.LittleEndian.PutUint32(edited[i:], math.Float32bits(0.000123))
	str := func(b []byte, s string) []byte {
		return append(binary.LittleEndian.AppendUint32(b, uint32(len(s))), s...)
	}
	body := str(str(bytes.Clone(entry[:keyEnd]), "fraud"), "1")
	body = binary.LittleEndian.AppendUint32(body, 1) // one output
	body = append(str(body, "score"), 14)            // BYTES
	body = binary.LittleEndian.AppendUint32(body, 1) // rank 1
	body = binary.LittleEndian.AppendUint64(body, 1<<31)
	body = binary.LittleEndian.AppendUint64(body, 0) // no data
	mac := hmac.New(sha256.New, []byte(testHMACKey))
	mac.Write(body)
	huge := mac.Sum(body)

	for what, planted := range map[string][]byte{"an edited answer": edited, "2^31 BYTES elements": huge} {
		if err := rdb.Set(ctx, name, planted, 0).Err(); err != nil {
			t.Fatal(err)
		}
		base, _, stop := start(t, args...) // a fresh replica: its L1 is empty
		var code int
		var s float64
		grew := alloctest.Once(func() { code, _, s = postInfer(t, base+"/v2/models/fraud/infer") })
		if code != 200 || s != honest {
			t.Errorf("%s: %d, score %v; want 200 and the model's %v", what, code, s, honest)
		}
		if !alloctest.Race && grew > 16<<20 {
			t.Errorf("%s (%d bytes): the request allocated %d bytes", what, len(planted), grew)
		}
		t.Logf("%s (%d-byte entry): 200 with the model's score, %d bytes allocated by the whole process", what, len(planted), grew)
		if n := metric(t, base, "servekit_cache_l2_rejected_total", ""); n != 1 {
			t.Errorf("%s: servekit_cache_l2_rejected_total %v, want 1", what, n)
		}
		poll.Until(t, "the planted entry gone", func() bool {
			v, err := rdb.Get(ctx, name).Bytes()
			return !bytes.Equal(v, planted) || errors.Is(err, redis.Nil)
		})
		stop()
	}
}

// metric sums the series of a counter in a server's /metrics whose labels
// contain label.
func metric(t *testing.T, base, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0.0
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}
