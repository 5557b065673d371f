package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A model that panics during a computation gives every waiter an Internal
// error that does not repeat the panic value, and one log entry with the
// stack: the panic never reaches the transport's own recovery.
func TestPanicIsLoggedAndInternal(t *testing.T) {
	var logs bytes.Buffer
	c := newCache(t, cache.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	boom := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { panic("secret-state") })
	p := c.Middleware()(boom)
	ctx, cancel := context.WithCancel(context.Background()) // a ctx that can end: the computation gets its own goroutine
	defer cancel()
	_, err := p.Predict(ctx, servingtest.Rows(2, 1, 0))
	if serving.CodeOf(err) != serving.Internal || strings.Contains(err.Error(), "secret-state") {
		t.Errorf("error %v, want internal without the panic value", err)
	}
	if out := logs.String(); strings.Count(out, `"msg":"cache: model panicked"`) != 1 || !strings.Contains(out, "secret-state") || !strings.Contains(out, `"stack"`) {
		t.Errorf("log %q, want one entry with the panic and its stack", out)
	}
}
