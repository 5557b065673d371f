package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rollout"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// TestHybrid: under concurrent load, a router mixing a remote version and
// an in-process one canaries from the remote to the local version with
// zero failed requests, both answering along the way; the embedded copy
// agrees with the server on every answer, bit for bit; the remote
// challenger is compared in band. Over gRPC and REST.
func TestHybrid(t *testing.T) {
	lib := orttest.Library(t)
	for _, protocol := range []string{"grpc", "rest"} {
		t.Run(protocol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			rep, err := run(ctx, []string{"-ort-lib", lib, "-protocol", protocol, "-hold", "150ms", "-callers", "4", "-min-pairs", "20"}, &out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Load.Failed != 0 || rep.Load.ByVersion["1"] == 0 || rep.Load.ByVersion["2"] == 0 {
				t.Errorf("load %+v: want no failure, both versions answering", rep.Load)
			}
			if rep.Plan != rollout.PlanSucceeded || rep.Weights["2"] != 100 {
				t.Errorf("plan %s, weights %v: want succeeded with 2 at 100 %%", rep.Plan, rep.Weights)
			}
			m := rep.Migration
			if m.Pairs < 20 || len(m.Outputs) != 1 || m.Outputs[0].Agreement != 1 || m.Outputs[0].MaxAbsDiff != 0 || m.Shadow.Errors != 0 {
				t.Errorf("migration shadow %+v: want every pair agreeing exactly", m)
			}
			c := rep.Challenger
			if c.Challenger != "3" || c.Pairs == 0 || c.Shadow.Errors != 0 || len(c.Outputs) != 1 || c.Outputs[0].MaxAbsDiff == 0 {
				t.Errorf("challenger shadow %+v: want pairs compared, differences measured, no errors", c)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-hold", "0s"}, {"-callers", "0"}, {"-protocol", "x"}, {"-nope"}} {
		if _, err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
