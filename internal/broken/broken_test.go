package broken_test

import (
	"context"
	"errors"
	"testing"

	"github.com/servekit/servekit/internal/broken"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestFailsAndClosesWhatItWraps(t *testing.T) {
	model := servingtest.Linear(1)
	bad := serving.Errorf(serving.InvalidArgument, "batch: max rows 0")
	p := broken.New(model, bad)
	if _, err := p.Predict(context.Background(), servingtest.Rows(1, 1, 0)); !errors.Is(err, bad) {
		t.Errorf("Predict: %v", err)
	}
	for range 2 {
		if err := serving.Close(p); err != nil {
			t.Fatal(err)
		}
	}
	if model.Closes() != 1 {
		t.Errorf("the wrapped model closed %d times, want 1", model.Closes())
	}
}
