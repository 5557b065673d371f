// Package cache is response-cache middleware: an in-memory LRU (L1), an
// optional Redis tier shared by replicas (L2) whose entries are
// authenticated, and single-flight coalescing of identical misses.
//
// Reach for New, then Cache.Middleware:
//
//	c, err := cache.New(cache.WithMaxBytes(256<<20), cache.WithTTL(10*time.Minute))
//	if err != nil { ... }
//	defer c.Close()
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model)
//
// A Cache is safe for concurrent use and may be shared by the middleware of
// many models: entries are keyed by model, version and the model's content.
// Cache.Stats reads its counters; Cache.Purge empties L1. Close stops what
// the Cache runs: the computations of misses in flight and, with Redis, the
// write-behind writers. Without Redis the Cache owns no long-lived
// goroutine. Close the Cache yourself, after the chains that use it:
// closing a chain closes the middleware layer and the model it wraps, never
// the Cache, which is handed to the layer (the rule on serving.Middleware).
//
// # Keys and collision safety
//
// A request's key is model, version, the model's fingerprint, the requested
// outputs (in order), then each input's name, datatype, shape and data as
// raw bytes (so NaNs compare by their bits and -0 differs from +0). Params
// are not part of it: the ones servekit knows (timeout, priority, bypass) do
// not change an answer. Inputs whose data disagrees with their datatype or
// shape skip the cache and go to the model, which rejects it.
//
// The fingerprint (serving.Metadata.Fingerprint; backend/onnx sets the
// SHA-256 of the model's bytes) is what keeps answers with the weights that
// computed them: a hot reload, a rolling update, or two replicas on
// different weights under one model name and version never see each
// other's answers, in either tier. A layer reads it from the model it wraps
// once, when Cache.Middleware wraps it; new weights come as a new Predictor
// wrapped anew, which is what the repository's reload does, so one Cache
// may serve every version of every model and outlive their reloads. Two
// cases keep the old behaviour, keys of model and version only: a wrapped
// Predictor without a fingerprint (fakes, remote models), and a layer above
// a serving.Versioned one (a rollout router), whose versions have different
// weights. There, a cache shared across a reload would serve the old
// weights' answers until their TTL: put the cache below the router, one
// layer per version.
//
// A miss makes one copy of the request's bytes: the request is detached
// (its inputs deep-copied), the computation runs on that copy (it may
// outlive the caller, who may then reuse its buffers, and a model may answer
// with memory of its request) and the stored entry keeps it as its key. A
// lookup compares the stored request with the caller's field by field, after
// the L1 lock is released. L2 needs the key as bytes, the canonical key:
// every part length-prefixed, so no two requests share an encoding; Redis
// names an entry by its SHA-256 (streamed, not built), and the value holds
// it in full, compared on read too.
//
// A 64-bit hash of the key picks the LRU slot: hash/maphash with a random
// per-Cache seed, which is fast and, being keyed, cannot be made to collide
// on purpose from outside. Only the full key decides a hit, so a collision
// is only ever a miss (the newer answer takes the slot), never another
// input's answer. The hit path hashes and compares the tensors' bytes in
// place and allocates only its Response copy.
//
// # Bounds and TTL
//
// L1 is one LRU (github.com/hashicorp/golang-lru/v2 simplelru) behind one
// mutex, held for the map lookup and the list move only: ~30 ns, under a
// tenth of a hit (the two measured side by side in one run). It was 16 shards, each with its own lock; the
// shards were dropped because they did not pay (issue 24): against one lock
// at two goroutines on two cores they measured 1.04–1.15× on a quiet
// machine, and, once the key compare left the lock, 1.01× (p=0.91 over 10
// interleaved rounds: no difference, BenchmarkHit); they
// cost the exact LRU (each shard evicted on its own) and capped an entry at
// a sixteenth of MaxBytes. One lock serialises ~30 ns per hit, tens of
// millions of hits a second: a transport's own cost per request (≥ 20 µs
// of CPU over HTTP) keeps every core count we serve far below that.
// In-process callers hammering hits on many cores are where it could
// show; BenchmarkHit at -cpu N is the measurement to make before sharding
// again.
//
// WithMaxEntries and WithMaxBytes bound L1; the byte count is an estimate
// of key, tensors and bookkeeping. An entry larger than WithMaxEntryBytes
// (or MaxBytes) is returned but not stored, in either tier. Evictions for
// the bounds are counted.
//
// WithTTL stores an expiry time in each entry, checked when the entry is
// looked up: an expired entry is dropped then and counted as Expired. Nothing
// runs in the background (the expirable LRU's goroutine never exits, so it is
// not used); an expired entry that is never looked up again holds its memory
// until LRU pressure evicts it. The TTL runs from when the answer was
// computed; an entry read from L2 keeps the expiry it was written with, or
// this Cache's TTL from the read if that is sooner. Without a TTL entries
// live until evicted or purged.
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
// and the next identical request starts a fresh one. A caller whose context
// can never end computes in its own goroutine; otherwise the computation
// gets one.
//
// A panic in the model during a computation becomes an Internal error for
// its waiters and is logged at ERROR with its stack (WithLogger; it never
// reaches the transport's recovery). Only successful answers are cached;
// errors reach every waiter of that computation and are forgotten.
// serving.ParamCacheBypass set to true skips the cache both ways: neither
// read nor written.
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
// Whoever can write to the Redis could otherwise change the answers every
// replica serves, or plant a value that exhausts their memory, so L2 trusts
// nothing it reads:
//
//   - Entries are authenticated with HMAC-SHA256 under a key every replica
//     is given (WithL2Key, at least 32 bytes; previous keys still verify, so
//     a key rotates without a wave of misses). New refuses an L2 tier
//     without a key, unless WithL2Unauthenticated says to do without, which
//     it logs at WARN: entries then carry a checksum (the HMAC of the empty
//     key) that catches corruption, not forgery. A replica with a key never
//     accepts an unauthenticated entry.
//   - A value is read with GETRANGE up to the entry bound, so a planted
//     value costs no more memory than an honest one; its tag is checked,
//     in constant time, before any of it is parsed.
//   - The decoder is bounded like every decoder of untrusted bytes: it never
//     allocates from a count, length or shape the value claims before the
//     bytes that back it are there (outputs at most one per 17 bytes, BYTES
//     elements counted before they are sliced out of the value, fixed-size
//     data checked against its shape), so decoding allocates at most
//     8 × the value + 4 KiB, which tests assert on hostile entries and
//     FuzzDecodeEntry on every input.
//   - A value that is oversized, fails its tag or does not parse is a miss,
//     counted (Stats.L2Rejected, servekit.cache.l2.rejected), logged (the
//     1st, 2nd, 4th, 8th… time) and deleted, unless an honest write has
//     replaced it meanwhile (a script compares length and digest first).
//     Replicas sharing a Redis should share WithMaxEntryBytes: one with a
//     smaller bound deletes the larger entries it meets.
//
// Values are a compact binary record: a magic and version ("SKC2"), the
// expiry, the full canonical key, model and version, then per output its
// name, datatype, shape and raw tensor bytes, then the 32-byte tag.
// Response params are not stored.
//
// # Telemetry
//
// With WithMeterProvider (default the global one) the cache records
// servekit.cache.hits (attribute tier = l1|l2), servekit.cache.misses,
// servekit.cache.coalesced, servekit.cache.evictions,
// servekit.cache.l2.errors and servekit.cache.l2.rejected, with model and
// version attributes, and the observable gauges servekit.cache.bytes and
// servekit.cache.entries. With WithTracerProvider it records a cache.lookup
// span, with attribute cache.result = hit_l1|hit_l2|miss|coalesced, as a
// child of a traced request's span; untraced requests get none, so an
// untraced hit allocates only its Response copy.
package cache
