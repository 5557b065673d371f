// Package servingtest provides Predictor fakes for unit tests and the
// conformance check every Predictor in servekit passes, as net/http/httptest
// does for handlers.
//
// Replace a real model with Linear (a batchable FP32 model, y = 2x + 1),
// Static, Func, Failing or Slow; wrap one with a Recorder to see what reached
// it, or with InjectFaults to make a share of requests panic, hang past
// their deadline or fail (chaos tests of the layers above). Run Conformance
// on your own Predictor or middleware to check the contract of
// serving.Predictor, and Ownership on a middleware to check that closing it
// closes what it wraps and nothing handed to it (Fake.Closes counts).
package servingtest
