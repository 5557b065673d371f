package retry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Post is one HTTP POST that Policy.Post sends, and resends.
type Post struct {
	URL  string
	Body []byte
	// Header, when set, fills each attempt's headers: a fresh one per
	// attempt, so that a signature's timestamp is the attempt's.
	Header func(http.Header)
	// Timeout bounds each attempt. Zero: only the context and the client.
	Timeout time.Duration
}

// Post sends r until an answer is taken (2xx), refused for good, or the
// policy gives up, as Do does: a network error, 408, 425, 429 and 5xx are
// retried, with the answer's Retry-After as a hint; any other status,
// redirects included (see NoRedirects), is final.
func (p Policy) Post(ctx context.Context, c *http.Client, r Post) error {
	return p.Do(ctx, func(ctx context.Context) error {
		if r.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.Timeout)
			defer cancel()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
		if err != nil {
			return Permanent(err)
		}
		if r.Header != nil {
			r.Header(req.Header)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		return Status(resp)
	})
}

// StatusError is an HTTP answer that was not a success.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string {
	if e.Code >= 300 && e.Code < 400 {
		return "answered " + e.Status + " (redirects are not followed)"
	}
	return "answered " + e.Status
}

// Status reads what an answer means for a retry, and drains and closes its
// body (up to 64 KiB, so the connection can be reused): nil for 2xx; a
// retryable *StatusError for 408, 425, 429 and 5xx, with the Retry-After
// header (seconds or an HTTP date) as After's hint; a Permanent one for
// any other status.
func Status(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	c := resp.StatusCode
	if c >= 200 && c < 300 {
		return nil
	}
	err := &StatusError{Code: c, Status: resp.Status}
	if c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests || c >= 500 {
		return After(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return Permanent(err)
}

func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(secs, 0), 24*3600)) * time.Second // a day: no overflow; Policy.Max caps it anyway
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// NoRedirects returns a copy of c (nil: the default client) that does not
// follow redirects: a 3xx comes back as the answer, and Status makes it a
// permanent failure. A webhook or a log collector that redirects is
// misconfigured or hostile; following it would send the body, and headers
// such as a signature, to a host nobody configured.
func NoRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}
