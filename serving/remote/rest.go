package remote

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// rest speaks the protocol's REST binding.
type rest struct {
	hc    *http.Client
	owned *http.Transport // nil when the client is the caller's
	base  string          // scheme://host[/prefix]/v2
	model string          // /v2/models/{name}[/versions/{v}], escaped
	cfg   *config
}

func newREST(u *url.URL, model, version string, cfg *config) *rest {
	r := &rest{hc: cfg.client, cfg: cfg}
	if r.hc == nil {
		// http.DefaultTransport keeps 2 idle connections per host: under
		// concurrent load every other request would dial. Keep as many as
		// callers use at once.
		r.owned = http.DefaultTransport.(*http.Transport).Clone()
		r.owned.MaxIdleConnsPerHost = 256
		r.hc = &http.Client{Transport: r.owned}
	}
	base := *u
	base.RawQuery, base.Fragment = "", ""
	r.base = base.JoinPath("v2").String()
	r.model = "/models/" + url.PathEscape(model)
	if version != "" {
		r.model += "/versions/" + url.PathEscape(version)
	}
	return r
}

func (r *rest) closeIdle() {
	if r.owned != nil {
		r.owned.CloseIdleConnections()
	}
}

// The request parameters of Triton's binary tensor extension.
const paramBinaryOutput = "binary_data_output"

func (r *rest) infer(ctx context.Context, req *serving.Request, hdr http.Header) (*serving.Response, error) {
	binary := r.cfg.threshold >= 0 && (rawSize(req) >= r.cfg.threshold || !jsonExact(req))
	if r.cfg.threshold < 0 {
		if err := utf8Bytes(req); err != nil {
			return nil, err
		}
	}
	// Outputs come back binary whenever the server may send them so (it
	// ignores the parameter otherwise): only raw bytes carry every value
	// bit for bit.
	send := *req
	send.Params = withTimeout(ctx, req.Params)
	if r.cfg.threshold >= 0 {
		send.Params[paramBinaryOutput] = true
	}
	body, jsonLen := oipjson.AppendRequest(make([]byte, 0, 256+rawSize(req)), &send, binary, oipjson.NonFiniteString)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+r.model+"/infer", bytes.NewReader(body))
	if err != nil {
		return nil, serving.NewError(serving.InvalidArgument, err)
	}
	hreq.Header = hdr
	if binary {
		hreq.Header.Set("Content-Type", "application/octet-stream")
		hreq.Header.Set(oipjson.HeaderContentLength, strconv.Itoa(jsonLen))
	} else {
		hreq.Header.Set("Content-Type", "application/json")
	}
	b, h, _, err := r.do(hreq)
	if err != nil {
		return nil, err
	}
	jsonLen = -1
	if v := h.Get(oipjson.HeaderContentLength); v != "" {
		if jsonLen, err = strconv.Atoi(v); err != nil || jsonLen < 0 || jsonLen > len(b) {
			return nil, serving.Errorf(serving.Internal, "malformed answer: %s %q for a body of %d bytes", oipjson.HeaderContentLength, v, len(b))
		}
	}
	resp, err := oipjson.DecodeResponse(b, jsonLen, r.cfg.lim)
	if err != nil {
		return nil, malformed(err)
	}
	return resp, nil
}

// malformed turns a decoder's InvalidArgument into Internal: the answer,
// not the caller's request, is wrong.
func malformed(err error) error {
	return serving.Errorf(serving.Internal, "malformed answer: %w", err)
}

// do sends hreq and returns the body of a 200 answer, read within the
// limit, and its headers; any other status is an error with its code. The
// body is read to its end (or a bounded part of it) so the connection is
// reused.
func (r *rest) do(hreq *http.Request) (body []byte, hdr http.Header, status int, err error) {
	resp, err := r.hc.Do(hreq)
	if err != nil {
		return nil, nil, 0, transportError(err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, resp.StatusCode, statusError(resp)
	}
	b, err := readBounded(resp.Body, resp.ContentLength, r.cfg.maxBytes)
	if err != nil {
		return nil, nil, resp.StatusCode, err
	}
	return b, resp.Header, resp.StatusCode, nil
}

// readBounded reads body, of the claimed length n (-1: unknown), refusing
// more than most bytes. The buffer grows with the bytes that arrive (it
// at most doubles what has arrived), never with the claim, and stops at
// the claim: net/http never returns more than a Content-Length, so a body
// of known length is read into a buffer of exactly its size.
func readBounded(body io.Reader, n, most int64) ([]byte, error) {
	if n > most {
		return nil, serving.Errorf(serving.ResourceExhausted, "answer of %d bytes is over the limit of %d (WithMaxResponseBytes)", n, most)
	}
	limit := most + 1
	if n >= 0 {
		limit = n
	}
	b := make([]byte, 0, min(limit, 64<<10))
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = slices.Grow(b, int(min(int64(cap(b)), limit-int64(len(b)))))
		}
		m, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, transportError(err)
		}
	}
	if int64(len(b)) > most {
		return nil, serving.Errorf(serving.ResourceExhausted, "answer over the limit of %d bytes (WithMaxResponseBytes)", most)
	}
	return b, nil
}

// get asks path (under /v2) and returns a 200 body and the status.
func (r *rest) get(ctx context.Context, path string, hdr http.Header) ([]byte, int, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return nil, 0, serving.NewError(serving.InvalidArgument, err)
	}
	hreq.Header = hdr
	b, _, status, err := r.do(hreq)
	return b, status, err
}

// health asks a health route: 200 is true, 503 (not ready, not live)
// false, anything else an error (a model the server lacks: NotFound).
func (r *rest) health(ctx context.Context, path string, hdr http.Header) (bool, error) {
	_, status, err := r.get(ctx, path, hdr)
	if status == http.StatusServiceUnavailable {
		return false, nil
	}
	return err == nil, err
}

func (r *rest) live(ctx context.Context, hdr http.Header) (bool, error) {
	return r.health(ctx, "/health/live", hdr)
}

func (r *rest) ready(ctx context.Context, hdr http.Header) (bool, error) {
	return r.health(ctx, "/health/ready", hdr)
}

func (r *rest) modelReady(ctx context.Context, hdr http.Header) (bool, error) {
	return r.health(ctx, r.model+"/ready", hdr)
}

func (r *rest) serverMetadata(ctx context.Context, hdr http.Header) (oip.ServerMetadata, error) {
	b, _, err := r.get(ctx, "", hdr)
	if err != nil {
		return oip.ServerMetadata{}, err
	}
	m, err := oipjson.DecodeServerMetadata(b)
	if err != nil {
		return oip.ServerMetadata{}, malformed(err)
	}
	return m, nil
}

func (r *rest) modelMetadata(ctx context.Context, hdr http.Header) (serving.Metadata, []string, error) {
	b, _, err := r.get(ctx, r.model, hdr)
	if err != nil {
		return serving.Metadata{}, nil, err
	}
	md, versions, err := oipjson.DecodeModelMetadata(b, r.cfg.lim)
	if err != nil {
		return serving.Metadata{}, nil, malformed(err)
	}
	return md, versions, nil
}

// rawSize is the size of req's inputs as raw tensors.
func rawSize(req *serving.Request) int {
	n := 0
	for _, t := range req.Inputs {
		n += t.RawSize()
	}
	return n
}

// jsonExact reports whether JSON numbers and strings carry req's inputs
// exactly: no NaN or infinity (JSON has none; the strings servekit reads
// are not what Triton reads), no BYTES that are not UTF-8.
func jsonExact(req *serving.Request) bool {
	for _, t := range req.Inputs {
		switch d := t.Data().(type) {
		case []float32:
			for _, v := range d {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return false
				}
			}
		case []float64:
			for _, v := range d {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return false
				}
			}
		case []uint16:
			mask := uint16(0x7c00) // FP16's exponent
			switch t.DataType {
			case serving.BF16:
				mask = 0x7f80
			case serving.Uint16:
				mask = 0
			}
			for i := 0; mask != 0 && i < len(d); i++ {
				if d[i]&mask == mask { // all-ones exponent: NaN or infinity
					return false
				}
			}
		case [][]byte:
			for _, v := range d {
				if !utf8.Valid(v) {
					return false
				}
			}
		}
	}
	return true
}

// utf8Bytes refuses BYTES inputs JSON would change: the JSON writer
// replaces invalid UTF-8 with U+FFFD.
func utf8Bytes(req *serving.Request) error {
	for _, t := range req.Inputs {
		if d, ok := t.Data().([][]byte); ok {
			for i, v := range d {
				if !utf8.Valid(v) {
					return serving.Errorf(serving.InvalidArgument, "input %q: element %d is not UTF-8, which JSON cannot carry (WithBinaryThreshold is negative)", t.Name, i)
				}
			}
		}
	}
	return nil
}
