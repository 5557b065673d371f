package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// alert is a Payload as a monitor's alerts are: JSON with a key of its own.
type alert struct {
	Model  string   `json:"model"`
	Window int64    `json:"window"`
	Raised []string `json:"raised"`
}

func (a alert) IdempotencyKey() string { return a.Model + "/" + strconv.FormatInt(a.Window, 10) }

func testAlert(i int64) alert { return alert{Model: "fraud", Window: i, Raised: []string{"amount"}} }

func TestRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var keys []string
	var got alert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Equal(t, "Bearer s3cret", r.Header.Get("Authorization"))
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		assert.NoError(t, json.Unmarshal(b, &got))
		mu.Unlock()
	}))
	defer srv.Close()
	wh, err := webhook.New(srv.URL, webhook.WithBackoff(time.Millisecond, 5*time.Millisecond),
		webhook.WithHeader("Authorization", "Bearer s3cret"))
	require.NoError(t, err)
	wh.Send(testAlert(7))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, wh.Shutdown(ctx))
	assert.Equal(t, webhook.Stats{Sent: 1, Retries: 2}, wh.Stats())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, keys, 3)
	assert.Equal(t, keys[0], keys[2], "retries carry the same idempotency key")
	assert.Equal(t, []string{"amount"}, got.Raised)
	assert.Equal(t, int64(7), got.Window)
}

func TestGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Idempotency-Key") == "" {
			t.Error("no idempotency key")
		}
		if calls.Load() == 1 {
			w.WriteHeader(http.StatusBadRequest) // refused: no retry
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	wh, err := webhook.New(srv.URL, webhook.WithBackoff(time.Millisecond, time.Millisecond), webhook.WithRetries(3))
	require.NoError(t, err)
	wh.Send(testAlert(1))
	wh.Send(testAlert(2))
	require.NoError(t, wh.Shutdown(context.Background()))
	assert.Equal(t, webhook.Stats{Failed: 2, Retries: 3}, wh.Stats())
	assert.Equal(t, int32(1+4), calls.Load())
}

// A receiver that never answers costs one attempt timeout, and Close
// cancels even that; alerts beyond the queue are dropped, not waited for.
func TestNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	wh, err := webhook.New(srv.URL, webhook.WithQueue(2), webhook.WithAttemptTimeout(time.Hour))
	require.NoError(t, err)
	for i := range 10 { // returns although the receiver hangs
		wh.Send(testAlert(int64(i)))
	}
	require.NoError(t, wh.Close())
	require.NoError(t, wh.Close())
	s := wh.Stats()
	assert.Equal(t, int64(10), s.Dropped+s.Failed)
	assert.GreaterOrEqual(t, s.Dropped, int64(7))
	wh.Send(testAlert(11)) // after Close: dropped
	assert.Equal(t, s.Dropped+1, wh.Stats().Dropped)
}

func TestRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
		_, err := webhook.New(u)
		assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), u)
	}
}

// A signed delivery verifies at the receiver with the shared key; a
// tampered body, another key, or the same delivery replayed past the
// tolerance does not.
func TestSignsItsBody(t *testing.T) {
	key := []byte("shared secret")
	type delivery struct {
		sig  string
		body []byte
		at   time.Time
	}
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Get(webhook.SignatureHeader), b, time.Now()}
	}))
	defer srv.Close()
	wh, err := webhook.New(srv.URL, webhook.WithSigningKey(key))
	require.NoError(t, err)
	wh.Send(testAlert(3))
	require.NoError(t, wh.Shutdown(context.Background()))
	d := <-got
	require.Regexp(t, `^t=\d+,v1=[0-9a-f]{64}$`, d.sig)
	assert.NoError(t, webhook.Verify(key, d.sig, d.body, d.at, 0))

	tampered := append([]byte{}, d.body...)
	tampered[len(tampered)-2] ^= 1
	for name, err := range map[string]error{
		"tampered body": webhook.Verify(key, d.sig, tampered, d.at, 0),
		"other key":     webhook.Verify([]byte("guess"), d.sig, d.body, d.at, 0),
		"replayed late": webhook.Verify(key, d.sig, d.body, d.at.Add(6*time.Minute), 0),
		"from future":   webhook.Verify(key, d.sig, d.body, d.at.Add(-6*time.Minute), 0),
		"no signature":  webhook.Verify(key, "", d.body, d.at, 0),
		"garbage":       webhook.Verify(key, "t=x,v1=00", d.body, d.at, 0),
	} {
		assert.ErrorIs(t, err, webhook.ErrSignature, name)
	}
	// Key rotation: a header may carry several v1 signatures.
	both := webhook.Sign([]byte("old"), d.at, d.body) + ",v1=" + d.sig[len("t=1718000000,v1="):]
	assert.NoError(t, webhook.Verify(key, both, d.body, d.at, 0))

	_, err = webhook.New(srv.URL, webhook.WithSigningKey(nil))
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), "an empty key is refused")
	_, err = webhook.New(srv.URL, webhook.WithRetries(-1))
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), "a negative retry count is refused")
	_, err = webhook.New(srv.URL, webhook.WithQueue(-1)) // made a channel of -1 and panicked
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), "a negative queue is refused")
}

// A redirect is not followed: the alert (and its signature) never reaches
// a host nobody configured, and the delivery fails without retries.
func TestDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	wh, err := webhook.New(srv.URL, webhook.WithHTTPClient(&http.Client{}), webhook.WithBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	wh.Send(testAlert(1))
	require.NoError(t, wh.Shutdown(context.Background()))
	assert.Equal(t, webhook.Stats{Failed: 1}, wh.Stats())
	assert.Zero(t, elsewhere.Load())
}
