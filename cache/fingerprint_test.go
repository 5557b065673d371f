package cache_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/internal/redistest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// weights is a fake model named "linear", version "1", whose answer is
// 2x + bias and whose fingerprint names its bias, as two builds of one
// model with different weights would.
func weights(bias float32, fp string) *servingtest.Fake {
	lin := servingtest.Linear(4)
	md := lin.Metadata()
	md.Version, md.Fingerprint = "1", fp
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		resp, err := lin.Predict(ctx, req)
		if err != nil {
			return nil, err
		}
		y, _ := serving.Values[float32](resp.Outputs[0])
		out := make([]float32, len(y))
		for i, v := range y {
			out[i] = v - 1 + bias
		}
		t, _ := serving.NewTensor("y", resp.Outputs[0].Shape, out)
		resp.Outputs = []serving.Tensor{t}
		return resp, nil
	}).WithMetadata(md)
}

// answerOf is what weights(bias, …) answers for row(first).
func answerOf(first, bias float32) []float32 {
	out := linearOf(first)
	for i := range out {
		out[i] += bias - 1
	}
	return out
}

func v1(first float32) *serving.Request {
	r := row(first)
	r.Version = "1"
	return r
}

// A hot reload puts new weights under the same model and version: the
// layer built on the new model never answers with the old one's entries,
// though both share one Cache, and the old layer keeps its own.
func TestFingerprintHotReload(t *testing.T) {
	c := newCache(t)
	old, fresh := weights(0, "sha-old"), weights(100, "sha-new")
	before := c.Middleware()(old)
	assert.Equal(t, answerOf(1, 0), values(t, predict(t, before, v1(1))))

	after := c.Middleware()(fresh)
	assert.Equal(t, answerOf(1, 100), values(t, predict(t, after, v1(1))), "new weights, new answer")
	assert.Equal(t, 1, fresh.Calls())
	assert.Equal(t, answerOf(1, 100), values(t, predict(t, after, v1(1))))
	assert.Equal(t, 1, fresh.Calls(), "the new answer is cached")
	assert.Equal(t, answerOf(1, 0), values(t, predict(t, before, v1(1))), "requests still on the old model get its answer")
	assert.Equal(t, 1, old.Calls())
	assert.Equal(t, uint64(2), c.Stats().HitsL1)
}

// A rolling update, through a shared Redis: the old replicas keep writing
// answers of the old weights while new replicas start on the new ones;
// neither reads the other's, and each reads its own generation's.
func TestFingerprintRollingUpdate(t *testing.T) {
	srv := redistest.Start(t)
	replica := func(bias float32, fp string) (serving.Predictor, *servingtest.Fake, *cache.Cache) {
		c := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
		m := weights(bias, fp)
		return c.Middleware()(m), m, c
	}
	oldA, _, oldC := replica(0, "sha-old")
	assert.Equal(t, answerOf(1, 0), values(t, predict(t, oldA, v1(1))))
	poll.Until(t, "the old replica's write", func() bool { return oldC.Stats().L2Writes == 1 })

	newA, newModel, newC := replica(100, "sha-new")
	assert.Equal(t, answerOf(1, 100), values(t, predict(t, newA, v1(1))), "the new replica does not serve the old answer")
	assert.Equal(t, 1, newModel.Calls())
	assert.Zero(t, newC.Stats().HitsL2)
	poll.Until(t, "the new replica's write", func() bool { return newC.Stats().L2Writes == 1 })

	// Another old replica still reads the old answer, another new one the new.
	oldB, oldModel, _ := replica(0, "sha-old")
	assert.Equal(t, answerOf(1, 0), values(t, predict(t, oldB, v1(1))))
	assert.Zero(t, oldModel.Calls(), "the old generation shares its answers")
	newB, newModel2, _ := replica(100, "sha-new")
	assert.Equal(t, answerOf(1, 100), values(t, predict(t, newB, v1(1))))
	assert.Zero(t, newModel2.Calls(), "the new generation shares its answers")
}

// Two replicas serving different weights at once (a canary built into the
// same version, a half-finished deploy) answer each from its own weights,
// whichever computes first, in either tier.
func TestFingerprintTwoReplicasOnDifferentWeights(t *testing.T) {
	srv := redistest.Start(t)
	a := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
	b := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
	pa, pb := a.Middleware()(weights(0, "sha-a")), b.Middleware()(weights(7, "sha-b"))
	for i := range 3 {
		first := float32(i)
		assert.Equal(t, answerOf(first, 0), values(t, predict(t, pa, v1(first))))
		poll.Until(t, "a's write", func() bool { return a.Stats().L2Writes == uint64(i+1) })
		assert.Equal(t, answerOf(first, 7), values(t, predict(t, pb, v1(first))))
		poll.Until(t, "b's write", func() bool { return b.Stats().L2Writes == uint64(i+1) })
		assert.Equal(t, answerOf(first, 0), values(t, predict(t, pa, v1(first))))
	}
	assert.Zero(t, a.Stats().HitsL2+b.Stats().HitsL2, "neither replica read the other's answers")
	assert.Equal(t, uint64(3), a.Stats().HitsL1)
}

// Predictors without a fingerprint keep the old behaviour: entries are
// keyed by model and version, so two such layers share answers; so do
// layers above a router (serving.Versioned), whose versions differ.
func TestNoFingerprintKeysOnModelAndVersion(t *testing.T) {
	c := newCache(t)
	a, b := weights(0, ""), weights(100, "")
	predict(t, c.Middleware()(a), v1(1))
	assert.Equal(t, answerOf(1, 0), values(t, predict(t, c.Middleware()(b), v1(1))))
	assert.Zero(t, b.Calls())

	r := versioned{weights(0, "sha-x")}
	predict(t, c.Middleware()(r), v1(2))
	r2 := versioned{weights(0, "sha-y")}
	predict(t, c.Middleware()(r2), v1(2))
	assert.Zero(t, r2.Fake.Calls(), "above a router the fingerprint is not used")
}

// versioned is a stand-in router: it holds "versions" and describes itself
// with its heaviest version's metadata, as rollout.Router does.
type versioned struct{ *servingtest.Fake }

func (v versioned) Versions() []string                       { return []string{"1"} }
func (v versioned) Version(string) (serving.Predictor, bool) { return v.Fake, true }
func (v versioned) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	return v.Fake.Predict(ctx, req)
}
