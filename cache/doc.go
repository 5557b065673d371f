// Package cache is response-cache middleware: a sharded in-memory LRU (L1),
// an optional Redis tier shared by replicas (L2), and single-flight
// coalescing of identical misses.
//
// Reach for New, then Cache.Middleware:
//
//	c, err := cache.New(cache.WithMaxBytes(256<<20), cache.WithTTL(10*time.Minute))
//	if err != nil { ... }
//	defer c.Close()
//	p := serving.Chain(telemetry, c.Middleware(), batcher)(model)
//
// A Cache is safe for concurrent use and may be shared by the middleware of
// many models: entries are keyed by model and version. Cache.Stats reads its
// counters; Cache.Purge empties L1. Close stops what the Cache runs: the
// computations of misses in flight and, with Redis, the write-behind
// writers. Without Redis the Cache owns no long-lived goroutine. Close the
// Cache yourself: closing a chain (serving.Close) closes the middleware
// layer, which owns neither the Cache nor the model.
//
// # Keys and collision safety
//
// The key of a request is a canonical byte string: model, version, the
// requested outputs (in order), then each input's name, datatype, shape and
// data in serving's raw encoding (Tensor.RawBytes, a zero-copy view for
// numeric types; so NaNs compare by their bits and -0 differs from +0). Every
// part is length-prefixed, so no two different requests share a key. Params
// are not part of it: the ones servekit knows (timeout, priority, bypass) do
// not change an answer. Inputs whose data disagrees with their datatype or
// shape skip the cache and go to the model, which rejects them.
//
// A 64-bit hash of the key picks the shard and the LRU slot: hash/maphash
// with a random per-Cache seed, which is fast and, being keyed, cannot be
// made to collide on purpose from outside. Each entry keeps its full key,
// and a lookup compares it with the request, so a collision is only ever a
// miss (the newer answer takes the slot), never another input's answer. The
// hit path hashes and compares the tensors' bytes in place, without building
// the key; a miss builds it once. L2 names entries by SHA-256 of the key,
// which is stable across processes (maphash is not), and stores the full key
// beside the value, which is compared on read too.
//
// # Bounds and TTL
//
// L1 is split into WithShards LRUs (github.com/hashicorp/golang-lru/v2
// simplelru), each behind its own mutex: an LRU lookup reorders its list, so
// every Get takes a write lock, and sharding is what lets lookups run in
// parallel. MaxEntries and MaxBytes are divided evenly between shards; the
// byte count is an estimate of key, tensors and bookkeeping. An entry larger
// than WithMaxEntryBytes (or one shard's byte share) is returned but not
// stored, in either tier. Evictions for the bounds are counted.
//
// WithTTL stores an expiry time in each entry, checked when the entry is
// looked up: an expired entry is dropped then and counted as Expired. Nothing
// runs in the background (the expirable LRU's goroutine never exits, so it is
// not used); an expired entry that is never looked up again holds its memory
// until LRU pressure evicts it. The TTL runs from when the answer was
// computed; an entry read from L2 keeps the expiry it was written with, or
// this Cache's TTL from the read if that is sooner. Without a TTL entries
// live until evicted or purged; a new model version never sees them, since
// the version is in the key (set Request.Version, or put the cache below the
// router that sets it).
//
// # Coalescing and deadlines
//
// Identical concurrent misses (equal full keys) share one computation. The
// first caller starts it under context.WithoutCancel of its own context, so
// the computation keeps that context's values (the trace) but not its
// cancellation or deadline; WithComputeTimeout bounds it instead. Each
// caller, the first included, waits on its own context: one whose context
// ends returns at once with Canceled or DeadlineExceeded while the others
// keep waiting. When the last waiter has gone the computation is cancelled,
// and the next identical request starts a fresh one. The computation works
// on a deep copy of the first caller's inputs, since it may outlive that
// caller, which may then reuse its buffers. A caller whose context can never
// end computes in its own goroutine; otherwise the computation gets one.
//
// A panic in the model during a computation becomes an Internal error for
// its waiters and is logged at ERROR with its stack through slog.Default
// (it never reaches the transport's recovery). Only successful answers are
// cached; errors reach every waiter of that
// computation and are forgotten. serving.ParamCacheBypass set to true skips
// the cache both ways: neither read nor written.
//
// # Shared, read-only responses
//
// A cached Response is shared by every caller that hits it. Each caller gets
// its own shallow copy whose ID is its own request's, but the Outputs slice
// and tensor data are shared: treat them as read-only, as serving.Tensor
// says. The Version of a cached answer is the one that computed it.
//
// # The Redis tier
//
// WithRedis adds L2: after an L1 miss (inside the flight, so identical
// misses read it once) the entry is read from Redis; on a hit it fills L1.
// After a computation the entry is queued for a write-behind writer (a
// bounded queue; when it is full the write is dropped and counted), so Redis
// never delays a caller. Every call has a timeout (WithL2Timeout, default
// 50 ms); the client must set redis.Options.ContextTimeoutEnabled for it to
// hold, and New refuses a client without it. Any Redis failure is a miss:
// the model answers, the error is counted, and after WithL2Breaker
// consecutive errors Redis is skipped for the backoff, then tried again (one
// success closes the circuit). Purge does not touch Redis, which other
// replicas share.
//
// Values are a compact binary record: a magic and version ("SKC1"), the
// expiry, the full key, model and version, then per output its name,
// datatype, shape and raw tensor bytes. Response params are not stored.
//
// # Telemetry
//
// With WithMeterProvider (default the global one) the cache records
// servekit.cache.hits (attribute tier = l1|l2), servekit.cache.misses,
// servekit.cache.coalesced, servekit.cache.evictions and
// servekit.cache.l2.errors, with model and version attributes, and the
// observable gauges servekit.cache.bytes and servekit.cache.entries. With
// WithTracerProvider it records a cache.lookup span, with attribute
// cache.result = hit_l1|hit_l2|miss|coalesced, as a child of a traced
// request's span; untraced requests get none, so an untraced hit allocates
// only its Response copy.
package cache
