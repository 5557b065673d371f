package servingtest

import (
	"context"
	"testing"

	"github.com/servekit/servekit/serving"
)

// Ownership checks the ownership rule of serving.Middleware on mw. It puts
// mw over two Linear(2) models, a and b, and closes a's chain twice: a must
// be closed exactly once and b not at all, and b's chain must still answer,
// so anything the two layers share (a cache, a monitor, a sink handed to
// mw) was left open. open, when not nil, runs then with b's chain, for the
// checks only the package can make on its shared value (the cache still
// counts, the monitor still observes). Closing b's chain must close b.
func Ownership(t *testing.T, mw serving.Middleware, open func(t *testing.T, p serving.Predictor)) {
	t.Helper()
	a, b := Linear(2), Linear(2)
	pa, pb := mw(a), mw(b)
	for range 2 {
		if err := serving.Close(pa); err != nil {
			t.Fatalf("closing the first chain: %v", err)
		}
	}
	if a.Closes() != 1 || b.Closes() != 0 {
		t.Fatalf("closing the first chain closed its model %d times and the other's %d: want 1 and 0", a.Closes(), b.Closes())
	}
	if _, err := pb.Predict(context.Background(), Rows(2, 1, 0)); err != nil {
		t.Fatalf("the second chain after the first was closed: %v", err)
	}
	if open != nil {
		open(t, pb)
	}
	if err := serving.Close(pb); err != nil {
		t.Fatalf("closing the second chain: %v", err)
	}
	if b.Closes() != 1 {
		t.Fatalf("closing the second chain closed its model %d times, want 1", b.Closes())
	}
}
