// Package predlog logs predictions for audit, monitoring and retraining,
// like KServe's payload logger: a middleware that samples calls (a share
// of successes, every failure) and hands copies of their inputs and
// outputs to a Sink on its own goroutine, never slowing or failing the
// call it logs.
//
// Reach for New (or Middleware in a serving.Chain) with a sink:
//
//	sink, err := predlog.NewFileSink("/var/log/predictions", rowio.Parquet,
//		predlog.WithMaxBytes(128<<20), predlog.WithMaxAge(time.Hour))
//	logged := predlog.New(model, sink, predlog.WithSampleRate(0.1))
//	defer serving.Close(logged) // flushes the queue, closes the sink, then the model
//
// or predlog.NewCloudEvents(url) to send CloudEvents to a collector. A
// *Logger is safe for concurrent use; a sink is used by one Logger, which
// owns and closes it.
//
// # Never in the way
//
// Predict copies what it logs (serving.Tensor.Clone of the inputs and the
// outputs) before it returns, because the caller may reuse its buffers,
// and offers the record to a bounded queue (WithQueueSize) without
// waiting: when the queue is full the record is dropped and counted
// (Stats.Dropped, servekit.predlog.records{outcome=dropped}). The logger's
// goroutine writes batches of records under a timeout of their own
// (WithWriteTimeout, a context detached from every request). A sink error
// counts the batch as failed; it never reaches a caller. Close stops
// taking records, writes what is queued, and closes the sink: logging
// stops before the model does, as serving.Close walks the chain.
//
// # Files
//
// FileSink writes JSONL, CSV or Parquet through rowio, one row per row of
// the request (dimension 0) when inputs and outputs agree on it, else one
// row per call with each tensor flattened (Frame). Columns: id, model,
// model_version, timestamp, error and code (failed calls only), then each
// input and each output under its own name, as a vector when a row has
// more than one element. Those are the columns rowio.DefaultSchema reads,
// so a logged file is a valid batch/job input: replaying it scores the
// same rows again (TestFileSinkRotatesAndReplays checks that the answers
// match), and it is training data as it stands. Calls of different shapes
// (answers and failures, or two models) go to different files, since a
// Parquet file has one schema. A file rotates when it passes WithMaxBytes
// (for Parquet, bytes of data before encoding) or WithMaxAge, and on
// Close; it is written under a hidden temporary name and renamed into
// place, so a reader of the directory only sees whole files.
//
// # CloudEvents
//
// NewCloudEvents sends each record as two CloudEvents 1.0 (HTTP binding),
// a request and a response sharing the record's id, with KServe's event
// types (EventRequest, EventResponse) and Open Inference Protocol V2 JSON
// bodies, in binary mode (ce-* headers) or structured mode
// (application/cloudevents+json). Network errors, 408, 425, 429 and 5xx
// are retried with the module's one retry policy (doubling backoff with
// jitter, Retry-After honoured), at most WithRetries times (default 3
// from 100 ms); the write timeout bounds them all. Redirects are not
// followed. With one sender goroutine,
// a slow collector fills the queue and records are dropped, not queued
// without bound.
//
// # Metrics
//
// Scope ScopeName: servekit.predlog.records ({record}, outcome logged,
// failed or dropped) and servekit.predlog.queue.depth.
package predlog
