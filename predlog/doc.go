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
//	defer sink.Close() // last: after every Logger writing to it
//	logged, err := predlog.New(model, sink, predlog.WithSampleRate(0.1))
//	defer logged.Close() // writes and flushes the queue, then closes the model
//
// or predlog.NewCloudEvents(url) to send CloudEvents to a collector. A
// *Logger is safe for concurrent use, and so is a sink, which the Loggers
// of several models may share (Middleware(sink) in several chains). As
// serving.Middleware's rule says, a Logger owns and closes the model it
// wraps, never the sink handed to it: whoever made the sink closes it,
// after the Loggers.
//
// # Never in the way
//
// Predict copies what it logs (serving.Tensor.Clone of the inputs and the
// outputs) before it returns, because the caller may reuse its buffers,
// and offers the record to a queue bounded in records (WithQueueSize) and
// in bytes (WithQueueBytes, 32 MiB) without waiting: when the queue is
// full the record is dropped and counted (Stats.Dropped,
// servekit.predlog.records{outcome=dropped}). A record is weighed before
// it is copied, so a flood of large requests to a slow sink costs neither
// the copies nor more than the bound of memory. The logger's
// goroutine writes batches of records under a timeout of their own
// (WithWriteTimeout, a context detached from every request). A sink error
// counts the batch as failed; it never reaches a caller. Close stops
// taking records, writes what is queued, has the sink make it durable
// (Flusher), then closes the model: logging stops before the model does.
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
// Parquet file has one schema; at most WithMaxOpenFiles (16) are open at
// once, the least recently used rotated first, so requests that each
// invent their own input names cost a file on disk each, never a file
// descriptor and buffers each. A file rotates when it passes WithMaxBytes
// (for Parquet, bytes of data before encoding) or WithMaxAge, and on
// Close; it is written under a hidden temporary name and renamed into
// place (fsync, rename, fsync of the directory), so a reader of the
// directory only sees whole files.
//
// # Crashes
//
// Nothing a FileSink was given is deleted by a crash or a restart. Each
// Write hands the JSONL and CSV rows to the operating system before it
// returns, so a crash of the process (kill -9, an OOM kill) loses only
// what was still queued in memory; Logger.Flush goes further: when it
// returns nil, every record queued before it is on disk (JSONL and CSV
// fsynced; Parquet files rotated, since a Parquet file is readable only
// once its footer is written). A FileSink starting on a directory commits
// what a crashed predecessor left under temporary names: the whole rows
// of a JSONL or CSV file, a torn last row cut off, under the name the
// file would have had (never replacing a file); a Parquet file that
// missed its footer is kept aside as NAME.parquet.partial; only files
// without one whole row are removed. FileSink.Recovered says what it
// found. TestKillDashNine kills a logging process at random moments and
// checks every acknowledged record is there, exactly once. A FileSink
// locks its directory (flock, dropped by the kernel when the process
// ends), so a second sink cannot commit the files of a live one: give
// each sink a directory of its own.
//
// # CloudEvents
//
// NewCloudEvents sends each record as two CloudEvents 1.0 (HTTP binding),
// a request and a response sharing the record's id, with KServe's event
// types (EventRequest, EventResponse) and Open Inference Protocol V2 JSON
// bodies written by the protocol's codec (serving/oip/oipjson), exactly as
// the transports write them, NaN and ±Inf as "NaN", "Infinity" and
// "-Infinity" (the codec's NaN policy), in binary mode (ce-* headers) or
// structured mode
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
