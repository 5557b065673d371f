// Package loadtest drives a servekit server process the way the reliability
// tests need: it builds and starts servekit serve (cmd/servekit) as a child
// process, sends it closed-loop and open-loop HTTP load, and samples the
// process's resident memory and goroutines over time.
//
// Closed loop (Closed): c clients each send, wait for the answer, and send
// again; what it measures is capacity, and latency at that concurrency.
// Open loop (Open): requests leave at a fixed rate whatever the server
// does, each on its own goroutine, so overload is real: a closed loop
// slows down with the server and can never push it past capacity.
// Latency is timed from the moment a request is handed to the HTTP client;
// the achieved send rate is reported so a generator that fell behind shows.
//
// Every target must be a loopback address: this package is for tests of a
// server on the same machine, never for load on anything else. Loops are
// bounded by their duration and, for the open loop, by a cap on
// outstanding requests (beyond it a send is skipped and counted).
package loadtest
