package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// The whole demo, shortened: the seed's sequence runs in order under load,
// no request fails, both versions answer, the plan succeeds on the
// shadow's agreement, and the rollback leaves version 2 with all traffic.
func TestDemo(t *testing.T) {
	lib := orttest.Library(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, []string{
		"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-ort-lib", lib,
		"-hold", "150ms", "-callers", "4", "-min-pairs", "20", "-min-agreement", "0.8", "-admin-token", "test-token",
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mirror", "plan", "stop mirror", "switch", "rollback"}; !slices.Equal(rep.Phases, want) {
		t.Errorf("phases %v, want %v", rep.Phases, want)
	}
	if rep.Load.Failed != 0 || rep.Load.Requests == 0 {
		t.Errorf("load: %d requests, %d failed (%s)", rep.Load.Requests, rep.Load.Failed, rep.Load.FirstError)
	}
	if rep.Load.ByVersion["1"] == 0 || rep.Load.ByVersion["2"] == 0 {
		t.Errorf("answered by %v, want both versions", rep.Load.ByVersion)
	}
	if rep.Plan != "succeeded" {
		t.Errorf("plan %q, want succeeded", rep.Plan)
	}
	if rep.Shadow.Pairs < 20 || len(rep.Shadow.Outputs) != 1 || rep.Shadow.Outputs[0].Agreement < 0.9 {
		t.Errorf("shadow %+v, want at least 20 pairs mostly agreeing", rep.Shadow)
	}
	if len(rep.Weights) != 1 || rep.Weights["2"] != 100.0 {
		t.Errorf("final weights %v, want 2 at 100 %%", rep.Weights)
	}
	for _, line := range []string{"mirror: 100 %", "plan step 5/5: weights 2=100%", "plan succeeded", "switch: blue-green to version 1 at once: weights 1=100%", "rollback: the switch undone: weights 2=100%", " 0 failed"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q", line)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-hold", "0s"}, {"-callers", "0"}, {"-nope"}} {
		if _, err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
