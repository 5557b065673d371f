// Package reliability holds servekit's reliability tests; it has no API.
// They run the real servekit binary (cmd/servekit, built by the test, on
// loopback, bounded in time) or its middleware stack in-process:
//
//	TestOverload                 capacity, then 10x open loop: refusals, bounds, recovery (make overload: full, with p99 checks)
//	TestSoak                     mixed traffic, RSS and goroutines within 10% after warm-up (make soak: 10 minutes)
//	TestSIGTERMUnderLoad         drain: readiness first, stragglers 503, exit 0, nothing lost
//	TestFaultyBackend            panics, hangs past the deadline, errors: statuses, metrics, logs
//	TestRedisKilledMidRun        the cache's Redis dies: every request still 200
//	TestCorruptModelDuringReload a bad file in a hot reload: the loaded weights keep serving
//	TestModelNamesCannotReachTheFileSystem
//	TestAttacks                  issue 18's attack table on fresh replicas (make attacks; -attacks)
//	BenchmarkRefusal             what a 429 costs against a model run
//
// Flags: -overload.full, -soak 10m,
// -attacks (with -attacks.repeat, -attacks.rows, -attacks.bin), -out DIR
// (CSV curves, summaries, attacks.md). Figures are in the README's
// Reliability section.
package reliability
