package main

import (
	"context"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// inferCall is the per-request state, one allocation as in httpapi.
type inferCall struct {
	oipjson.InferRequest
	timing serving.Timing
}

// infer runs servekit's V2 steps on a body read whole: resolve, decode,
// oip.Server.Infer (servekit serve's 10 s cap), encode. It returns the
// status, the Inference-Header-Content-Length of a binary answer (-1: JSON)
// and the answer, appended to out.
func (a *app) infer(body []byte, jsonLen int, out []byte) (status, binLen int, b []byte) {
	if a.trivial {
		return 200, -1, append(out, a.answer...)
	}
	start := time.Now()
	t, err := a.core.Resolve(a.name, "")
	if err != nil {
		return errorBody(err, out)
	}
	c := new(inferCall)
	if err := oipjson.DecodeInferRequest(&c.InferRequest, body, jsonLen, oip.Limits{}); err != nil {
		return errorBody(err, out)
	}
	call := oip.Call{Start: start, MaxTimeout: 10 * time.Second, Timing: &c.timing, Classify: c.Classifications()}
	res, err := a.core.Infer(context.Background(), t, &c.Request, call)
	if err != nil {
		return errorBody(err, out)
	}
	resp := serving.Response{ID: c.Request.ID, Model: t.Model, Version: res.Version, Outputs: res.Outputs, Params: res.Response.Params}
	b, binLen = oipjson.AppendResponse(out, &resp, &c.InferRequest, oipjson.NonFiniteString)
	return 200, binLen, b
}

// errorBody is httpapi's error answer: its status, {"error": "..."}.
func errorBody(err error, out []byte) (int, int, []byte) {
	b := append(out, `{"error":`...)
	b = oipjson.AppendString(b, err.Error())
	return httpapi.Status(err), -1, append(b, "}\n"...)
}
