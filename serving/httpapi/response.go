package httpapi

import (
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// writeInferResponse encodes the answer into bp, a pooled buffer whose
// contents are no longer needed (the request's body, decoded), and writes
// it in one Write.
func (h *Handler) writeInferResponse(w http.ResponseWriter, c *inferCall, name string, res oip.Result, bp *[]byte) {
	resp := serving.Response{ID: c.Request.ID, Model: name, Version: res.Version, Outputs: res.Outputs, Params: res.Response.Params}
	b, jsonLen := oipjson.AppendResponse((*bp)[:0], &resp, &c.InferRequest, h.cfg.nonFinite)
	hdr := w.Header()
	if jsonLen >= 0 {
		hdr.Set(HeaderContentLength, strconv.Itoa(jsonLen))
		setBody(hdr, typeBinary, len(b))
	} else {
		setBody(hdr, typeJSON, len(b))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
}
