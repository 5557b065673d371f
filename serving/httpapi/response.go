package httpapi

import (
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

func (h *Handler) writeInferResponse(w http.ResponseWriter, c *inferCall, name string, res oip.Result) {
	resp := serving.Response{ID: c.Request.ID, Model: name, Version: res.Version, Outputs: res.Outputs, Params: res.Response.Params}
	bp := oipjson.Buffer()
	b, jsonLen := oipjson.AppendResponse((*bp)[:0], &resp, &c.InferRequest, h.cfg.nonFinite)
	hdr := w.Header()
	if jsonLen >= 0 {
		hdr.Set(HeaderContentLength, strconv.Itoa(jsonLen))
		c.hdr.set(hdr, "application/octet-stream", len(b))
	} else {
		c.hdr.set(hdr, "application/json", len(b))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
	oipjson.PutBuffer(bp)
}
