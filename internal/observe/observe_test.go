package observe_test

import (
	"context"
	"errors"
	"testing"

	"github.com/servekit/servekit/internal/observe"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The monitor sees successful answers only, each with its own request,
// and a cancelled call never reaches the model.
func TestObservesSuccessfulAnswersOnly(t *testing.T) {
	var seen []*serving.Request
	mw := observe.Middleware("test: predict", func(req *serving.Request, resp *serving.Response) {
		if resp == nil || len(resp.Outputs) == 0 {
			t.Errorf("observed an empty answer for %v", req)
		}
		seen = append(seen, req)
	})
	ok := mw(servingtest.Linear(2))
	req := servingtest.Rows(2, 1, 0)
	if _, err := ok.Predict(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	failed := mw(servingtest.Failing(serving.Errorf(serving.Unavailable, "down")))
	if _, err := failed.Predict(context.Background(), servingtest.Rows(2, 1, 0)); serving.CodeOf(err) != serving.Unavailable {
		t.Fatalf("failing model: %v, want its error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ok.Predict(ctx, servingtest.Rows(2, 1, 0)); !errors.Is(err, context.Canceled) && serving.CodeOf(err) != serving.Canceled {
		t.Fatalf("cancelled call: %v, want canceled", err)
	}
	if len(seen) != 1 || seen[0] != req {
		t.Fatalf("observed %d answers, want the one success", len(seen))
	}
}

func TestOwnership(t *testing.T) {
	n := 0
	servingtest.Ownership(t, observe.Middleware("test: predict", func(*serving.Request, *serving.Response) { n++ }),
		func(t *testing.T, p serving.Predictor) {
			if n == 0 {
				t.Error("the second chain's answer was not observed")
			}
		})
}
