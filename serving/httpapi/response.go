package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
)

func (h *Handler) writeInferResponse(w http.ResponseWriter, d *decoded, name, version string, resp *serving.Response) {
	outs, err := serving.SelectOutputs(&d.req, resp)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	bp := getBuf()
	b := append((*bp)[:0], '{')
	if d.req.ID != "" {
		b = append(b, `"id":`...)
		b = appendString(b, d.req.ID)
		b = append(b, ',')
	}
	b = append(b, `"model_name":`...)
	b = appendString(b, name)
	if version != "" {
		b = append(b, `,"model_version":`...)
		b = appendString(b, version)
	}
	if len(resp.Params) > 0 {
		if pj, err := json.Marshal(resp.Params); err == nil {
			b = append(b, `,"parameters":`...)
			b = append(b, pj...)
		}
	}
	b = append(b, `,"outputs":[`...)
	anyBinary := false
	for i, t := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, t.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, t.DataType.String()...)
		b = append(b, `","shape":`...)
		b = appendShape(b, t.Shape)
		if d.binary(i) {
			anyBinary = true
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(t.RawSize()), 10)
			b = append(b, "}}"...)
			continue
		}
		b = append(b, `,"data":[`...)
		b = appendElems(b, t, 0, t.Len(), h.cfg.nonFinite)
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	hdr := w.Header()
	if anyBinary {
		hdr.Set(HeaderContentLength, strconv.Itoa(len(b)))
		for i, t := range outs {
			if d.binary(i) {
				b = t.AppendRaw(b)
			}
		}
		d.hdr.set(hdr, "application/octet-stream", len(b))
	} else {
		d.hdr.set(hdr, "application/json", len(b))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
	putBuf(bp)
}
