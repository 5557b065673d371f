package cache_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/internal/redistest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// patient is an L2 timeout no loaded CI machine reaches, for the tests that
// count L2 errors exactly and are not about timeouts: under the default 50 ms
// a busy 2-core runner timed a Redis call out now and then.
var patient = cache.WithL2Timeout(10 * time.Second)

// testKey is the HMAC key the replicas of a test share.
var testKey = []byte("0123456789abcdef0123456789abcdef")

var signed = cache.WithL2Key(testKey)

func TestL2SharedBetweenReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
	b := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
	modelA, modelB := servingtest.Linear(4), servingtest.Linear(4)
	pa, pb := a.Middleware()(modelA), b.Middleware()(modelB)

	predict(t, pa, row(1))
	poll.Until(t, "the write-behind", func() bool { return a.Stats().L2Writes == 1 })

	req := row(1)
	req.ID = "on-b"
	resp := predict(t, pb, req)
	assert.Equal(t, "on-b", resp.ID)
	assert.Equal(t, linearOf(1), values(t, resp))
	assert.Equal(t, "linear", resp.Model)
	assert.Zero(t, modelB.Calls(), "B answered from A's entry")
	predict(t, pb, row(1))
	st := b.Stats()
	assert.Equal(t, uint64(1), st.HitsL2)
	assert.Equal(t, uint64(1), st.HitsL1, "the L2 answer filled B's L1")
	assert.Zero(t, st.L2Errors)
}

func TestL2DownThenBack(t *testing.T) {
	srv := redistest.Start(t)
	opts := []cache.L2Option{signed, cache.WithL2Breaker(3, 100*time.Millisecond), cache.WithL2Timeout(time.Second)}
	a := newCache(t, cache.WithRedis(srv.Client(), opts...))
	b := newCache(t, cache.WithRedis(srv.Client(), opts...))
	pa, pb := a.Middleware()(servingtest.Linear(4)), b.Middleware()(servingtest.Linear(4))

	srv.Stop()
	for i := range 20 {
		resp := predict(t, pa, row(float32(i)))
		assert.Equal(t, linearOf(float32(i)), values(t, resp), "the model answers while Redis is down")
	}
	st := a.Stats()
	assert.GreaterOrEqual(t, st.L2Errors, uint64(3))
	assert.Positive(t, st.L2Skipped, "the circuit opened")
	assert.Less(t, st.L2Errors, uint64(20), "an open circuit costs no Redis calls")

	srv.Start()
	// After the backoff, a miss tries Redis again and its write lands.
	next := float32(1000)
	poll.Until(t, "L2 writes after the restart", func() bool {
		next++
		predict(t, pa, row(next))
		time.Sleep(5 * time.Millisecond) // let the write-behind run
		return a.Stats().L2Writes > 0
	})
	// Writes and reads both work again: on the other replica, and on A
	// itself once its L1 forgets.
	w := a.Stats().L2Writes
	predict(t, pa, row(-1))
	poll.Until(t, "the write", func() bool { return a.Stats().L2Writes > w })
	assert.Equal(t, linearOf(-1), values(t, predict(t, pb, row(-1))))
	assert.Equal(t, uint64(1), b.Stats().HitsL2)
	a.Purge()
	predict(t, pa, row(-1))
	assert.Equal(t, uint64(1), a.Stats().HitsL2)
}

func TestL2SlowRedisDoesNotSlowRequests(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, cache.WithRedis(srv.Client(), signed, cache.WithL2Timeout(20*time.Millisecond)))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)

	// The pause is not lifted: CLIENT UNPAUSE would itself wait for it.
	const pause = 3 * time.Second
	require.Equal(t, "+OK", srv.Do("CLIENT", "PAUSE", "3000", "ALL"))
	start := time.Now()
	for i := range 3 {
		assert.Equal(t, linearOf(float32(i)), values(t, predict(t, p, row(float32(i)))))
	}
	// A generous bound: the requests did not wait for the pause to end.
	assert.Less(t, time.Since(start), pause)
	assert.Equal(t, 3, model.Calls())
	assert.GreaterOrEqual(t, c.Stats().L2Errors, uint64(3), "the reads timed out")
}

func TestL2RejectsAClientThatIgnoresDeadlines(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	_, err := cache.New(cache.WithRedis(client, signed))
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err))
}
