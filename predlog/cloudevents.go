package predlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/servekit/servekit/serving"
)

// The CloudEvents types KServe's payload logger sends; collectors built
// for KServe take servekit's events as they are.
const (
	EventRequest  = "org.kubeflow.serving.inference.request"
	EventResponse = "org.kubeflow.serving.inference.response"
)

// CloudEvents sends each record as two CloudEvents 1.0 over HTTP to a
// collector, as KServe's logger does: the request (type EventRequest,
// data an Open Inference Protocol V2 request body) and the response
// (EventResponse, a V2 response body, or {"id","error","code"} for a
// failed call), both with the record's ID as event id. Binary content
// mode by default (ce-* headers, the data as the body); structured mode
// (one application/cloudevents+json document) with WithStructured.
// A POST that fails with a network error, a 5xx or a 429 is retried with
// doubling backoff, at most WithRetries times; other statuses fail at
// once. Use it from one Logger.
type CloudEvents struct {
	url        string
	client     *http.Client
	source     string
	structured bool
	retries    int
	backoff    time.Duration
}

// CloudEventsOption configures a CloudEvents sink.
type CloudEventsOption interface{ applyCE(*CloudEvents) }

type ceOption func(*CloudEvents)

func (f ceOption) applyCE(c *CloudEvents) { f(c) }

// WithStructured sends structured-mode events.
func WithStructured() CloudEventsOption {
	return ceOption(func(c *CloudEvents) { c.structured = true })
}

// WithSource sets the events' source. Default "servekit/predlog".
func WithSource(s string) CloudEventsOption { return ceOption(func(c *CloudEvents) { c.source = s }) }

// WithHTTPClient sets the client. Default: one with a 5 s timeout.
func WithHTTPClient(h *http.Client) CloudEventsOption {
	return ceOption(func(c *CloudEvents) { c.client = h })
}

// WithRetries sets the retries of a failed POST and the first backoff.
// Default 3 retries from 100 ms.
func WithRetries(n int, backoff time.Duration) CloudEventsOption {
	return ceOption(func(c *CloudEvents) { c.retries, c.backoff = max(0, n), max(0, backoff) })
}

// NewCloudEvents returns a sink that POSTs to url.
func NewCloudEvents(url string, opts ...CloudEventsOption) *CloudEvents {
	c := &CloudEvents{url: url, client: &http.Client{Timeout: 5 * time.Second}, source: "servekit/predlog", retries: 3, backoff: 100 * time.Millisecond}
	for _, o := range opts {
		o.applyCE(c)
	}
	return c
}

// Write sends every record's two events; it returns the errors of those
// that could not be delivered.
func (c *CloudEvents) Write(ctx context.Context, recs []Record) error {
	var errs []error
	for _, r := range recs {
		req, resp := requestBody(r), responseBody(r)
		for _, ev := range []struct {
			typ  string
			data any
		}{{EventRequest, req}, {EventResponse, resp}} {
			if err := c.send(ctx, r, ev.typ, ev.data); err != nil {
				errs = append(errs, fmt.Errorf("predlog: event %s %s: %w", ev.typ, r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *CloudEvents) send(ctx context.Context, r Record, typ string, data any) error {
	body, err := json.Marshal(data)
	if err != nil {
		return err
	}
	contentType := "application/json"
	if c.structured {
		contentType = "application/cloudevents+json"
		body, err = json.Marshal(map[string]any{"specversion": "1.0", "id": r.ID, "source": c.source, "type": typ,
			"time": r.Time.Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": json.RawMessage(body)})
		if err != nil {
			return err
		}
	}
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.post(ctx, r, typ, contentType, body)
		var perm permanent
		if err == nil || errors.As(err, &perm) || attempt == c.retries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		wait *= 2
	}
}

type permanent struct{ error }

func (c *CloudEvents) post(ctx context.Context, r Record, typ, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return permanent{err}
	}
	req.Header.Set("Content-Type", contentType)
	if !c.structured {
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", r.ID)
		req.Header.Set("Ce-Source", c.source)
		req.Header.Set("Ce-Type", typ)
		req.Header.Set("Ce-Time", r.Time.Format(time.RFC3339Nano))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("collector answered %s", resp.Status)
	}
	return permanent{fmt.Errorf("collector answered %s", resp.Status)}
}

// Close does nothing: every Write has finished its requests.
func (c *CloudEvents) Close() error { return nil }

type v2Tensor struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     []any   `json:"data"`
}

func requestBody(r Record) any {
	return map[string]any{"id": r.ID, "inputs": v2Tensors(r.Inputs)}
}

func responseBody(r Record) any {
	if r.Err != "" {
		return map[string]any{"id": r.ID, "model_name": r.Model, "error": r.Err, "code": r.Code.String()}
	}
	return map[string]any{"id": r.ID, "model_name": r.Model, "model_version": r.Version, "outputs": v2Tensors(r.Outputs)}
}

// v2Tensors renders tensors as the protocol's JSON: flat data, BYTES as
// strings, FP16/BF16 as numbers; NaN and ±Inf, which JSON lacks, as null.
func v2Tensors(ts []serving.Tensor) []v2Tensor {
	out := make([]v2Tensor, len(ts))
	for i, t := range ts {
		d := make([]any, t.Len())
		strs, _ := t.Strings()
		for j := range d {
			switch v, ok := t.Float64At(j); {
			case strs != nil:
				d[j] = strs[j]
			case t.DataType == serving.Bool:
				d[j] = v == 1
			case !ok || math.IsNaN(v) || math.IsInf(v, 0):
				d[j] = nil
			case t.DataType == serving.FP16 || t.DataType == serving.BF16 || t.DataType == serving.FP32 || t.DataType == serving.FP64:
				d[j] = v
			default:
				d[j] = json.Number(strconv.FormatFloat(v, 'f', -1, 64))
			}
		}
		if u, ok := t.Data().([]uint64); ok { // beyond float64's exact integers
			for j := range u {
				d[j] = json.Number(strconv.FormatUint(u[j], 10))
			}
		}
		if x, ok := t.Data().([]int64); ok {
			for j := range x {
				d[j] = json.Number(strconv.FormatInt(x[j], 10))
			}
		}
		out[i] = v2Tensor{Name: t.Name, Shape: t.Shape, Datatype: t.DataType.String(), Data: d}
	}
	return out
}
