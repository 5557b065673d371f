package repository

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
)

// The placeholder keeps the parts of the Predictor contract that apply to
// something that never answers: Unavailable with the reason, ctx errors,
// ErrClosed after an idempotent Close, never ready. (servingtest.Conformance
// needs an answer, which a placeholder exists not to give.)
func TestPlaceholder(t *testing.T) {
	for _, p := range []*placeholder{loadingPlaceholder("m", "1"), failedPlaceholder("m", "2", errors.New("bad bytes"))} {
		_, err := p.Predict(context.Background(), &serving.Request{})
		if serving.CodeOf(err) != serving.Unavailable {
			t.Errorf("Predict: %v, want Unavailable", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.Predict(ctx, &serving.Request{}); serving.CodeOf(err) != serving.Canceled {
			t.Errorf("Predict with a cancelled ctx: %v", err)
		}
		if serving.IsReady(p) {
			t.Error("a placeholder is ready")
		}
		if md, _ := serving.MetadataOf(p); md.Name != "m" || md.Version == "" {
			t.Errorf("metadata %+v", md)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := p.Predict(context.Background(), &serving.Request{}); !errors.Is(err, serving.ErrClosed) {
			t.Errorf("Predict after Close: %v", err)
		}
	}
	_, err := failedPlaceholder("m", "2", errors.New("bad bytes")).Predict(context.Background(), &serving.Request{})
	if err == nil || !strings.Contains(err.Error(), "bad bytes") {
		t.Errorf("failed placeholder error %v does not carry the reason", err)
	}
}
