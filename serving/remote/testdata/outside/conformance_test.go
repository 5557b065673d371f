package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestConformance runs servekit's conformance check on the client, from
// outside servekit's module, against each server in $SERVEKIT_TARGETS
// (space-separated) serving servingtest.Linear(4) as "linear".
func TestConformance(t *testing.T) {
	targets := strings.Fields(os.Getenv("SERVEKIT_TARGETS"))
	if len(targets) == 0 {
		t.Fatal("SERVEKIT_TARGETS is not set")
	}
	for _, target := range targets {
		t.Run(strings.SplitN(target, ":", 2)[0], func(t *testing.T) {
			servingtest.Conformance(t, servingtest.Config{
				New: func(t *testing.T) serving.Predictor {
					p, err := remote.Dial(context.Background(), target, "linear")
					if err != nil {
						t.Fatal(err)
					}
					return p
				},
				Request:       func() *serving.Request { return servingtest.Rows(4, 2, 1) },
				Deterministic: true,
			})
		})
	}
}
