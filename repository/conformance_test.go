package repository_test

import (
	"context"
	"testing"
	"time"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A model's router as the repository builds it keeps the Predictor
// contract.
func TestRouterConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			root := tree(t, map[string]string{"linear/1/model.onnx": "", "linear/2/model.onnx": ""})
			load := func(context.Context, repository.Version) (serving.Predictor, error) {
				return servingtest.Linear(2), nil
			}
			r, err := repository.Open(context.Background(), root, load, repository.WithPollInterval(0), repository.WithLogger(quiet),
				repository.WithModelHook(nil))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			rt, _ := r.Router("linear")
			return rt
		},
		Request:       func() *serving.Request { return servingtest.Rows(2, 3, 1) },
		Deterministic: true,
	})
}

// WithExplicit's start-up models load like Load; one that fails is
// reported, not a reason for Open to fail.
func TestExplicitStartupFailureDoesNotFailOpen(t *testing.T) {
	root := tree(t, map[string]string{"good/1/model.onnx": "ok", "bad/1/model.onnx": "fail: corrupt"})
	r := open(t, root, newLoader(), repository.WithExplicit("good", "bad", "missing"))
	if got := states(r, "good") + " " + states(r, "bad"); got != "1:ready 1:failed" {
		t.Errorf("states %s", got)
	}
	if _, err := repository.Open(context.Background(), root, newLoader().Load, repository.WithExplicit("../x")); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("an invalid start-up model name: %v, want InvalidArgument", err)
	}
}

// Options out of range fail Open with InvalidArgument, router options
// included, rather than being clamped or failing each model's load later.
func TestOpenRefusesInvalidOptions(t *testing.T) {
	root := tree(t, map[string]string{"good/1/model.onnx": "ok"})
	for name, opt := range map[string]repository.Option{
		"negative poll":      repository.WithPollInterval(-time.Second),
		"zero load timeout":  repository.WithLoadTimeout(0),
		"zero drain timeout": repository.WithDrainTimeout(0),
		"no loads at once":   repository.WithLoadConcurrency(0),
		"no model file":      repository.WithModelFile(""),
		"a model file path":  repository.WithModelFile("../model.onnx"),
		"router options":     repository.WithRouterOptions(rollout.WithStatsWindow(time.Millisecond)),
	} {
		if r, err := repository.Open(context.Background(), root, newLoader().Load, opt); serving.CodeOf(err) != serving.InvalidArgument {
			if r != nil {
				r.Close()
			}
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}
