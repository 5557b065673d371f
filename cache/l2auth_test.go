package cache_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/internal/redistest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// redisName is where a cache with prefix p keeps req's entry under fp.
func redisName(p string, req *serving.Request, fp string) string {
	sum := cache.SumKey(req, fp)
	return p + hex.EncodeToString(sum[:])
}

// head is the start of an entry for req under fp: magic, no expiry, key.
func head(req *serving.Request, fp string) []byte {
	k := cache.AppendKey(nil, req, fp)
	b := binary.LittleEndian.AppendUint64([]byte("SKC2"), 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
	return append(b, k...)
}

// str appends a u32-length-prefixed string.
func str(b []byte, s string) []byte {
	return append(binary.LittleEndian.AppendUint32(b, uint32(len(s))), s...)
}

// output appends one output's header: name, datatype, shape, raw length.
func output(b []byte, name string, dt serving.DataType, shape []int64, rawLen uint64) []byte {
	b = append(str(b, name), byte(dt))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(shape)))
	for _, d := range shape {
		b = binary.LittleEndian.AppendUint64(b, uint64(d))
	}
	return binary.LittleEndian.AppendUint64(b, rawLen)
}

// hostile lists entries that lie about their sizes, each after the key of
// row(1): what a writer holding the key (a leaked one) or an unauthenticated
// tier could plant.
func hostile() map[string][]byte {
	tail := func(outputs uint32, rest ...byte) []byte {
		b := str(str(nil, "linear"), "")
		b = binary.LittleEndian.AppendUint32(b, outputs)
		return append(b, rest...)
	}
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	many := func(n int, one []byte) []byte { return bytes.Repeat(one, n) }
	emptyOut := output(nil, "", serving.FP32, nil, 4) // a scalar: 4 bytes of data follow
	emptyOut = append(emptyOut, 0, 0, 0, 0)
	return map[string][]byte{
		// Row 7 of issue 18: a BYTES output of 2^31 elements in ~120 bytes.
		"BYTES 2^31 elements, no data": tail(1, output(nil, "y", serving.Bytes, []int64{1 << 31}, 0)...),
		"BYTES 2^31 elements, 8 bytes": tail(1, append(output(nil, "y", serving.Bytes, []int64{1 << 31}, 8), 0, 0, 0, 0, 0, 0, 0, 0)...),
		"BYTES element longer than the data": tail(1, append(output(nil, "y", serving.Bytes, []int64{1}, 8),
			append(u32(1<<30), 1, 2, 3, 4)...)...),
		"FP32 2^30 elements, 4 bytes":  tail(1, append(output(nil, "y", serving.FP32, []int64{1 << 30}, 4), 1, 2, 3, 4)...),
		"FP64 overflowing shape":       tail(1, output(nil, "y", serving.FP64, []int64{1 << 40, 1 << 40}, 0)...),
		"negative dim":                 tail(1, output(nil, "y", serving.FP32, []int64{-1}, 0)...),
		"2^32-1 outputs":               tail(math.MaxUint32, 0, 0, 0, 0),
		"a million outputs in 1 MB":    tail(1<<20, make([]byte, 1<<20)...),
		"rank 2^32-1":                  tail(1, append(str(nil, "y"), byte(serving.FP32), 0xff, 0xff, 0xff, 0xff)...),
		"name of 2^32-1 bytes":         tail(1, u32(math.MaxUint32)...),
		"raw length 2^63":              tail(1, output(nil, "y", serving.FP32, []int64{1}, 1<<63)...),
		"invalid datatype":             tail(1, output(nil, "y", serving.DataType(200), []int64{0}, 0)...),
		"trailing bytes":               tail(0, 1, 2, 3),
		"10,000 tiny outputs (valid)":  tail(10_000, many(10_000, emptyOut)...),
		"BYTES 100,000 empty elements": tail(1, append(output(nil, "y", serving.Bytes, []int64{100_000}, 400_000), make([]byte, 400_000)...)...),
	}
}

// Every hostile entry, though signed with the right key, is refused or
// decoded within the budget: allocation in proportion to its bytes, never
// to what it claims.
func TestDecodeHostileEntriesWithinBudget(t *testing.T) {
	req := row(1)
	keys := [][]byte{testKey}
	for name, tail := range hostile() {
		b := cache.Sign(append(head(req, ""), tail...), testKey)
		var err error
		var ok bool
		got := alloctest.Bytes(3, func() { _, _, ok, err = cache.DecodeEntry(b, req, "", keys) })
		if !strings.Contains(name, "(valid)") && !strings.HasPrefix(name, "BYTES 100,000") {
			assert.Error(t, err, name)
		} else {
			assert.True(t, ok && err == nil, "%s: %v", name, err)
		}
		if !alloctest.Race {
			assert.LessOrEqual(t, got, cache.DecodeBudget(len(b)), "%s: %d-byte entry allocated %d bytes", name, len(b), got)
		}
		// Unsigned, the same bytes are refused before they are parsed.
		forged := append(append(head(req, ""), tail...), make([]byte, 32)...)
		got = alloctest.Bytes(3, func() { _, _, _, err = cache.DecodeEntry(forged, req, "", keys) })
		assert.ErrorContains(t, err, "authentication", name)
		if !alloctest.Race {
			assert.LessOrEqual(t, got, cache.DecodeBudget(0), "%s: refusing a forged entry allocated %d bytes", name, got)
		}
	}
}

// Row 7 of issue 18, end to end: a planted 120-byte entry that declares a
// BYTES output of 2^31 elements is a miss, counted and deleted, and the
// request costs what an honest miss costs, not 48 GiB.
func TestL2HostileEntryIsAMissWithinBudget(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	ctx := context.Background()
	c := newCache(t, cache.WithRedis(client, signed, patient, cache.WithL2Prefix("t:")))
	model := servingtest.Failing(serving.Errorf(serving.Unavailable, "test: the model is down")) // nothing is written back
	p := c.Middleware()(model)

	for name, tail := range hostile() {
		if strings.Contains(name, "(valid)") || strings.HasPrefix(name, "BYTES 100,000") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			req := row(1)
			key := redisName("t:", req, "")
			for _, planted := range [][]byte{
				cache.Sign(append(head(req, ""), tail...), testKey),                    // a leaked key
				append(append(head(req, ""), tail...), bytes.Repeat([]byte{7}, 32)...), // no key
			} {
				require.NoError(t, client.Set(ctx, key, planted, 0).Err())
				before := c.Stats().L2Rejected
				var err error
				got := alloctest.Once(func() { _, err = p.Predict(ctx, row(1)) })
				assert.Equal(t, serving.Unavailable, serving.CodeOf(err), "the model answered: a miss")
				assert.Equal(t, before+1, c.Stats().L2Rejected)
				// Reading the value (twice: the reply, then its bytes) and
				// decoding it, plus an honest miss's own costs.
				budget := 2*uint64(len(planted)) + cache.DecodeBudget(len(planted)) + 64<<10
				if !alloctest.Race {
					assert.LessOrEqual(t, got, budget, "a %d-byte entry cost %d bytes", len(planted), got)
				}
				t.Logf("a %d-byte entry: a miss that allocated %d bytes (budget %d)", len(planted), got, budget)
				poll.Until(t, "the entry deleted", func() bool { return client.Exists(ctx, key).Val() == 0 })
			}
		})
	}
	assert.Zero(t, c.Stats().L2Errors, "Redis itself never failed")
}

// Row 7's other half: an honest entry edited in Redis (one float of the
// answer changed) would change every replica's answer; its tag no longer
// verifies, so it is a miss and the model's answer replaces it.
func TestL2EditedEntryIsRejected(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	ctx := context.Background()
	a := newCache(t, cache.WithRedis(client, signed, patient, cache.WithL2Prefix("t:")))
	predict(t, a.Middleware()(servingtest.Linear(4)), row(1))
	poll.Until(t, "the write-behind", func() bool { return a.Stats().L2Writes == 1 })
	key := redisName("t:", row(1), "")
	v, err := client.Get(ctx, key).Bytes()
	require.NoError(t, err)
	want := linearOf(1)
	i := bytes.Index(v, binary.LittleEndian.AppendUint32(nil, math.Float32bits(want[0])))
	require.Positive(t, i, "the answer's first float is in the entry")
	binary.LittleEndian.PutUint32(v[i:], math.Float32bits(0.000123))
	require.NoError(t, client.Set(ctx, key, v, 0).Err())

	b := newCache(t, cache.WithRedis(client, signed, patient, cache.WithL2Prefix("t:")))
	model := servingtest.Linear(4)
	assert.Equal(t, want, values(t, predict(t, b.Middleware()(model), row(1))))
	assert.Equal(t, 1, model.Calls(), "the edited answer was not served")
	st := b.Stats()
	assert.Equal(t, uint64(1), st.L2Rejected)
	assert.Zero(t, st.HitsL2)
	poll.Until(t, "the honest answer back in Redis", func() bool {
		got, err := client.Get(ctx, key).Bytes()
		return err == nil && !bytes.Equal(got, v)
	})
	c := newCache(t, cache.WithRedis(client, signed, patient, cache.WithL2Prefix("t:")))
	assert.Equal(t, want, values(t, predict(t, c.Middleware()(servingtest.Linear(4)), row(1))))
	assert.Equal(t, uint64(1), c.Stats().HitsL2)
}

func TestL2CorruptValueIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	c := newCache(t, cache.WithRedis(client, cache.WithL2Prefix("t:"), signed, patient))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	poll.Until(t, "the write-behind", func() bool { return c.Stats().L2Writes == 1 })
	key := redisName("t:", row(1), "")
	require.NoError(t, client.Set(context.Background(), key, "garbage", 0).Err())

	c.Purge()
	assert.Equal(t, linearOf(1), values(t, predict(t, p, row(1))))
	assert.Equal(t, 2, model.Calls())
	st := c.Stats()
	assert.Equal(t, uint64(1), st.L2Rejected)
	assert.Zero(t, st.L2Errors, "Redis answered: not an error of Redis")
	poll.Until(t, "garbage replaced", func() bool { return client.Get(context.Background(), key).Val() != "garbage" })
}

// An entry larger than the entry bound is not read past the bound: a miss,
// rejected, deleted.
func TestL2OversizedValueIsNotReadBudget(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	ctx := context.Background()
	c := newCache(t, cache.WithMaxEntryBytes(4<<10), cache.WithRedis(client, cache.WithL2Prefix("t:"), signed, patient))
	p := c.Middleware()(servingtest.Failing(serving.Errorf(serving.Unavailable, "test: down")))
	key := redisName("t:", row(1), "")
	huge := cache.Sign(append(head(row(1), ""), make([]byte, 8<<20)...), testKey)
	require.NoError(t, client.Set(ctx, key, huge, 0).Err())
	var err error
	got := alloctest.Once(func() { _, err = p.Predict(ctx, row(1)) })
	assert.Equal(t, serving.Unavailable, serving.CodeOf(err))
	if !alloctest.Race {
		assert.Less(t, got, uint64(1<<20), "an 8 MiB value cost %d bytes", got)
	}
	assert.Equal(t, uint64(1), c.Stats().L2Rejected)
	poll.Until(t, "the value deleted", func() bool { return client.Exists(ctx, key).Val() == 0 })
}

// A replica under another key cannot feed this one, and a rotation that
// lists the old key as previous reads the old entries.
func TestL2KeysAndRotation(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	oldKey, newKey := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
	old := newCache(t, cache.WithRedis(client, cache.WithL2Key(oldKey), patient))
	predict(t, old.Middleware()(servingtest.Linear(4)), row(1))
	poll.Until(t, "the write-behind", func() bool { return old.Stats().L2Writes == 1 })

	rotating := newCache(t, cache.WithRedis(client, cache.WithL2Key(newKey, oldKey), patient))
	model := servingtest.Linear(4)
	predict(t, rotating.Middleware()(model), row(1))
	assert.Zero(t, model.Calls(), "the previous key still verifies")
	assert.Equal(t, uint64(1), rotating.Stats().HitsL2)

	stranger := newCache(t, cache.WithRedis(client, cache.WithL2Key(bytes.Repeat([]byte("s"), 32)), patient))
	model = servingtest.Linear(4)
	predict(t, stranger.Middleware()(model), row(1))
	assert.Equal(t, 1, model.Calls(), "another key's entry is not trusted")
	assert.Equal(t, uint64(1), stranger.Stats().L2Rejected)
}

// L2 refuses to run without a key unless told to, and says so in the log
// when told to; an unauthenticated tier still catches corruption.
func TestL2NeedsAKey(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	for name, opts := range map[string][]cache.L2Option{
		"no key":          nil,
		"short key":       {cache.WithL2Key([]byte("short"))},
		"short previous":  {cache.WithL2Key(testKey, []byte("short"))},
		"key and opt-out": {signed, cache.WithL2Unauthenticated()},
	} {
		_, err := cache.New(cache.WithRedis(client, opts...))
		assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), name)
	}

	var log strings.Builder
	c := newCache(t, cache.WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
		cache.WithRedis(client, cache.WithL2Unauthenticated(), patient, cache.WithL2Prefix("u:")))
	assert.Contains(t, log.String(), "level=WARN")
	assert.Contains(t, log.String(), "not authenticated")
	predict(t, c.Middleware()(servingtest.Linear(4)), row(1))
	poll.Until(t, "the write-behind", func() bool { return c.Stats().L2Writes == 1 })

	keyed := newCache(t, cache.WithRedis(client, signed, patient, cache.WithL2Prefix("u:")))
	model := servingtest.Linear(4)
	predict(t, keyed.Middleware()(model), row(1))
	assert.Equal(t, 1, model.Calls(), "a keyed replica does not trust an unauthenticated entry")
	assert.Equal(t, uint64(1), keyed.Stats().L2Rejected)
}

func TestCodecRoundTrip(t *testing.T) {
	f32, _ := serving.NewTensor("f", []int64{2, 2}, []float32{1, 2, 3, 4})
	str, _ := serving.NewStrings("s", []int64{3}, []string{"a", "", "ccc"})
	half, _ := serving.NewFP16("h", []int64{1}, []uint16{0x3c00})
	scalar, _ := serving.NewTensor("b", nil, []bool{true})
	resp := &serving.Response{ID: "x", Model: "m", Version: "7", Outputs: []serving.Tensor{f32, str, half, scalar}}
	req := row(1)
	keys := [][]byte{testKey}
	b := cache.EncodeEntry(req, "fp", resp, 1234, testKey)

	got, expires, ok, err := cache.DecodeEntry(b, req, "fp", keys)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(1234), expires)
	assert.Equal(t, "", got.ID)
	assert.Equal(t, resp.Model, got.Model)
	assert.Equal(t, resp.Version, got.Version)
	require.Len(t, got.Outputs, len(resp.Outputs))
	for i, want := range resp.Outputs {
		g := got.Outputs[i]
		assert.Equal(t, want.Name, g.Name)
		assert.Equal(t, want.DataType, g.DataType)
		assert.Equal(t, want.AppendRaw(nil), g.AppendRaw(nil), "output %q", want.Name)
		assert.Equal(t, fmt.Sprint(want.Shape), fmt.Sprint(g.Shape))
	}

	_, _, ok, err = cache.DecodeEntry(b, row(2), "fp", keys)
	assert.NoError(t, err)
	assert.False(t, ok, "another key's value is a miss")
	_, _, ok, err = cache.DecodeEntry(b, req, "other weights", keys)
	assert.NoError(t, err)
	assert.False(t, ok, "another fingerprint's value is a miss")
	for i := range len(b) {
		_, _, _, err := cache.DecodeEntry(b[:i], req, "fp", keys)
		assert.Error(t, err, "truncated at %d", i)
		flipped := bytes.Clone(b)
		flipped[i] ^= 1
		_, _, _, err = cache.DecodeEntry(flipped, req, "fp", keys)
		assert.Error(t, err, "bit flipped at %d", i)
	}
}

// FuzzDecodeEntry decodes signed entries whose key matches, so the fuzzer
// reaches the output parser, and holds every decode to the budget.
func FuzzDecodeEntry(f *testing.F) {
	req := row(1)
	prefix := head(req, "")
	f3, _ := serving.NewTensor("y", []int64{1, 4}, linearOf(1))
	s, _ := serving.NewStrings("s", []int64{2}, []string{"a", "bc"})
	for _, outs := range [][]serving.Tensor{{f3}, {s}, {f3, s}, nil} {
		e := cache.EncodeEntry(req, "", &serving.Response{Model: "linear", Outputs: outs}, 0, testKey)
		f.Add(e[len(prefix) : len(e)-32])
	}
	for _, tail := range hostile() {
		if len(tail) <= 4<<10 { // the large ones slow the mutator; the unit test has them
			f.Add(tail)
		}
	}
	keys := [][]byte{testKey}
	f.Fuzz(func(t *testing.T, tail []byte) {
		b := cache.Sign(append(bytes.Clone(prefix), tail...), testKey)
		var resp *serving.Response
		var ok bool
		var err error
		got := alloctest.Once(func() { resp, _, ok, err = cache.DecodeEntry(b, req, "", keys) })
		if !alloctest.Race && got > cache.DecodeBudget(len(b)) {
			t.Fatalf("a %d-byte entry allocated %d bytes, budget %d", len(b), got, cache.DecodeBudget(len(b)))
		}
		if err == nil && ok {
			for _, o := range resp.Outputs {
				if err := o.Validate(); err != nil {
					t.Fatalf("decoded an invalid tensor: %v", err)
				}
			}
			// What decodes re-encodes to the same bytes (BOOL aside: any
			// non-zero byte decodes as true).
			again := cache.EncodeEntry(req, "", resp, 0, testKey)
			if !slices.ContainsFunc(resp.Outputs, func(o serving.Tensor) bool { return o.DataType == serving.Bool }) && !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
			}
		}
	})
}
