package predlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/servekit/servekit/internal/retry"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip/oipjson"
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
// A POST that fails with a network error, a 408, 425, 429 or 5xx is
// retried with the module's retry policy (doubling backoff with jitter
// from WithRetries' first wait, capped at 5 s, a Retry-After honoured up
// to the cap), at most WithRetries times, within the logger's write
// timeout; other statuses fail at once. Redirects are not followed (a 3xx
// fails the event): records are not sent to a host nobody configured.
// It is safe for concurrent use, so the Loggers of several models may
// share one.
type CloudEvents struct {
	url        string
	client     *http.Client
	source     string
	structured bool
	retries    int
	backoff    time.Duration
	errs       []error // options out of range, reported by NewCloudEvents
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

// WithHTTPClient sets the client; a copy of it that does not follow
// redirects is used. Default: one with a 5 s timeout.
func WithHTTPClient(h *http.Client) CloudEventsOption {
	return ceOption(func(c *CloudEvents) { c.client = h })
}

// WithRetries sets the retries of a failed POST and the first backoff.
// Default 3 retries from 100 ms.
func WithRetries(n int, backoff time.Duration) CloudEventsOption {
	return ceOption(func(c *CloudEvents) {
		if n < 0 || backoff < 0 {
			c.errs = append(c.errs, fmt.Errorf("retries %d from %v: want neither negative", n, backoff))
			return
		}
		c.retries, c.backoff = n, backoff
	})
}

// NewCloudEvents returns a sink that POSTs to url, an http or https URL.
// It fails with an InvalidArgument error for another URL or an invalid
// option.
func NewCloudEvents(url string, opts ...CloudEventsOption) (*CloudEvents, error) {
	c := &CloudEvents{url: url, client: &http.Client{Timeout: 5 * time.Second}, source: "servekit/predlog", retries: 3, backoff: 100 * time.Millisecond}
	for _, o := range opts {
		o.applyCE(c)
	}
	if u, err := neturl.Parse(url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errs = append(c.errs, fmt.Errorf("collector URL %q: want http(s)://host/path", url))
	}
	if c.client == nil {
		c.errs = append(c.errs, errors.New("nil HTTP client"))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "predlog: %w", err)
	}
	c.client = retry.NoRedirects(c.client)
	return c, nil
}

// Write sends every record's two events; it returns the errors of those
// that could not be delivered.
func (c *CloudEvents) Write(ctx context.Context, recs []Record) error {
	var errs []error
	for _, r := range recs {
		req, resp := requestBody(r), responseBody(r)
		for _, ev := range []struct {
			typ  string
			data []byte
		}{{EventRequest, req}, {EventResponse, resp}} {
			if err := c.send(ctx, r, ev.typ, ev.data); err != nil {
				errs = append(errs, fmt.Errorf("predlog: event %s %s: %w", ev.typ, r.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *CloudEvents) send(ctx context.Context, r Record, typ string, body []byte) error {
	contentType := "application/json"
	if c.structured {
		var err error
		contentType = "application/cloudevents+json"
		body, err = json.Marshal(map[string]any{"specversion": "1.0", "id": r.ID, "source": c.source, "type": typ,
			"time": r.Time.Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": json.RawMessage(body)})
		if err != nil {
			return err
		}
	}
	return c.policy().Post(ctx, c.client, retry.Post{URL: c.url, Body: body, Header: func(h http.Header) {
		h.Set("Content-Type", contentType)
		if !c.structured {
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Id", r.ID)
			h.Set("Ce-Source", c.source)
			h.Set("Ce-Type", typ)
			h.Set("Ce-Time", r.Time.Format(time.RFC3339Nano))
		}
	}})
}

// policy: the module's retry policy, from WithRetries' backoff up to a cap
// that keeps one event within a write timeout's reach.
func (c *CloudEvents) policy() retry.Policy {
	return retry.Policy{Retries: c.retries, Base: c.backoff, Max: max(c.backoff, maxBackoff)}
}

const maxBackoff = 5 * time.Second

// Close does nothing: every Write has finished its requests.
func (c *CloudEvents) Close() error { return nil }

// requestBody is the record's request as an Open Inference Protocol V2
// request body, written by the protocol's codec (oipjson) as the
// transports write JSON: flat data, BYTES as strings, FP16/BF16 as
// numbers, NaN and ±Inf as the strings "NaN", "Infinity", "-Infinity"
// (the codec's NaN policy, which keeps every JSON parser working).
func requestBody(r Record) []byte {
	b, _ := oipjson.AppendRequest(nil, &serving.Request{ID: r.ID, Inputs: r.Inputs}, false, oipjson.NonFiniteString)
	return b
}

// responseBody is the record's answer as a V2 response body, or
// {"id","model_name","error","code"} for a failed call.
func responseBody(r Record) []byte {
	if r.Err != "" {
		b, _ := json.Marshal(map[string]any{"id": r.ID, "model_name": r.Model, "error": r.Err, "code": r.Code.String()})
		return b
	}
	b, _ := oipjson.AppendResponse(nil, &serving.Response{ID: r.ID, Model: r.Model, Version: r.Version, Outputs: r.Outputs}, nil, oipjson.NonFiniteString)
	return b
}
