package retry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errFlaky = errors.New("flaky")

func TestRetriesUntilSuccess(t *testing.T) {
	var calls int
	var waits []time.Duration
	p := retry.Policy{Retries: 5, Base: time.Millisecond, Max: 3 * time.Millisecond,
		OnRetry: func(err error, d time.Duration) { waits = append(waits, d) }}
	err := p.Do(context.Background(), func(context.Context) error {
		if calls++; calls < 4 {
			return errFlaky
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	// Equal jitter: between half and all of min(Max, Base·2ⁿ).
	for i, d := range waits {
		full := min(3*time.Millisecond, time.Millisecond<<i)
		if d < full/2 || d > full {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, d, full/2, full)
		}
	}
}

func TestGivesUpAndStopsOnPermanent(t *testing.T) {
	var calls int
	p := retry.Policy{Retries: 2, Base: time.Microsecond}
	err := p.Do(context.Background(), func(context.Context) error { calls++; return errFlaky })
	if !errors.Is(err, errFlaky) || calls != 3 {
		t.Errorf("err %v after %d calls, want errFlaky after 3", err, calls)
	}
	calls = 0
	bad := errors.New("bad request")
	err = p.Do(context.Background(), func(context.Context) error { calls++; return retry.Permanent(bad) })
	if err != bad || calls != 1 {
		t.Errorf("err %#v after %d calls, want the unmarked error after 1", err, calls)
	}
}

// A hint lengthens the wait up to Max; a wait past the deadline is not
// started.
func TestHintsAndDeadlines(t *testing.T) {
	var waits []time.Duration
	p := retry.Policy{Retries: 1, Base: time.Microsecond, Max: 2 * time.Millisecond,
		OnRetry: func(_ error, d time.Duration) { waits = append(waits, d) }}
	calls := 0
	p.Do(context.Background(), func(context.Context) error {
		calls++
		return retry.After(errFlaky, time.Hour)
	})
	if len(waits) != 1 || waits[0] != 2*time.Millisecond || calls != 2 {
		t.Errorf("waits %v, calls %d: want one wait of Max", waits, calls)
	}

	p = retry.Policy{Retries: 3, Base: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls = 0
	err := p.Do(ctx, func(context.Context) error { calls++; return errFlaky })
	if calls != 1 || err != errFlaky {
		t.Errorf("%d calls, err %v: a wait past the deadline must not start", calls, err)
	}
}

func TestCancelledDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := retry.Policy{Retries: 3, Base: time.Hour, OnRetry: func(error, time.Duration) { cancel() }}
	err := p.Do(ctx, func(context.Context) error { return errFlaky })
	if !errors.Is(err, errFlaky) || !errors.Is(err, context.Canceled) {
		t.Errorf("err %v: want the last error and the cancellation", err)
	}
}

func TestPost(t *testing.T) {
	var calls atomic.Int32
	var moved atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		case "/elsewhere":
			moved.Add(1)
			return
		case "/refused":
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Attempt") == "" {
			t.Error("no per-attempt header")
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}))
	defer srv.Close()
	c := retry.NoRedirects(srv.Client())
	p := retry.Policy{Retries: 3, Base: time.Millisecond}
	attempt := 0
	err := p.Post(context.Background(), c, retry.Post{URL: srv.URL + "/ok", Body: []byte("{}"),
		Header: func(h http.Header) { attempt++; h.Set("X-Attempt", string(rune('0'+attempt))) }})
	if err != nil || calls.Load() != 2 {
		t.Errorf("err %v after %d calls", err, calls.Load())
	}
	for _, path := range []string{"/moved", "/refused"} {
		calls.Store(0)
		err := p.Post(context.Background(), c, retry.Post{URL: srv.URL + path})
		var se *retry.StatusError
		if !errors.As(err, &se) || se.Code/100 == 2 {
			t.Errorf("%s: err %v, want a final status error", path, err)
		}
	}
	if moved.Load() != 0 {
		t.Error("a redirect was followed")
	}
}
