package main

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rollout"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// runQuick runs the story shortened: smaller datasets and windows, faster
// rotation, polling and label delay, one-second canary steps. The p99
// budget is loose because CI runs it with -race on a shared machine; the
// guard's own behaviour is rollout's to test. Nothing here asserts a
// duration: only events, their order and counts.
func runQuick(t *testing.T, extra ...string) (*runReport, string) {
	t.Helper()
	rep, out, err := runQuickErr(t, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return rep, out
}

func runQuickErr(t *testing.T, extra ...string) (*runReport, string, error) {
	t.Helper()
	lib := orttest.Library(t)
	args := append([]string{
		"-dir", t.TempDir(), "-ort-lib", lib,
		"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-admin-token", "test-token",
		"-history", "5000", "-nightly-rows", "5000",
		"-callers", "6", "-rate", "300", "-shift-after", "1500", "-window", "300",
		"-label-delay", "300ms", "-log-rotate", "300ms", "-poll", "100ms",
		"-train-rows", "600", "-shadow-pairs", "300", "-min-requests", "10", "-min-labelled", "150",
		"-hold", "1s", "-interval", "200ms", "-tail", "500ms", "-max-p99", "2s", "-timeout", "3m",
	}, extra...)
	var out bytes.Buffer
	rep, err := run(context.Background(), args, &out)
	t.Log("\n" + out.String())
	return rep, out.String(), err
}

// The loop closes: the drift is detected, v2 is trained on the logged
// drifted traffic, loaded, shadowed, promoted step by step, in that order,
// and not one request fails on the way.
func TestClosedLoop(t *testing.T) {
	rep, _ := runQuick(t)
	want := []kind{evNightly, evServing, evShift, evDrift, evTrained, evLoaded, evShadow, evStep, evStep, evStep, evPromoted, evTotals}
	if got := kinds(rep.Events); !slices.Equal(got, want) {
		t.Errorf("events %v\nwant   %v", got, want)
	}
	l := rep.Load
	if l.Failed != 0 || l.NonFinite != 0 || l.Requests == 0 {
		t.Errorf("load: %d requests, %d failed (%s), %d NaN answers; want none failed or NaN", l.Requests, l.Failed, l.FirstError, l.NonFinite)
	}
	if l.ByVersion["1"] == 0 || l.ByVersion["2"] == 0 {
		t.Errorf("answered by %v, want both versions", l.ByVersion)
	}
	if o := rep.Outcome; o == nil || o.Plan.State != rollout.PlanSucceeded {
		t.Fatalf("outcome %+v, want the plan succeeded", o)
	}
	if !maps.Equal(rep.Weights, map[string]float64{"2": 100}) {
		t.Errorf("weights after the story %v, want v2 at 100 %%", rep.Weights)
	}
	// Retraining paid: on held-out drifted traffic, and again on the
	// labelled traffic both versions answered during the rollout.
	if tr := rep.Trained; tr == nil || tr.AUCNew <= tr.AUCOld || tr.Rows == 0 {
		t.Errorf("trained %+v, want v2's held-out AUC above v1's", tr)
	}
	if a := rep.Outcome.AUC; a.N == 0 || a.Candidate <= a.Baseline {
		t.Errorf("AUC on the labelled transactions both versions answered: %+v, want the canary above the stable", a)
	}
	if v2 := rep.Load.Last["2"]; !v2.After(rep.Outcome.Plan.Ended) {
		t.Errorf("v2 last answered at %v, before its promotion at %v", v2, rep.Outcome.Plan.Ended)
	}
}

// A broken v2 (it answers NaN) is rolled back at the plan's first check
// with the reason; v1 keeps serving and no request fails.
func TestClosedLoopBrokenV2(t *testing.T) {
	rep, out := runQuick(t, "-break-v2")
	want := []kind{evNightly, evServing, evShift, evDrift, evTrained, evLoaded, evShadow, evStep, evRolledBack, evTotals}
	if got := kinds(rep.Events); !slices.Equal(got, want) {
		t.Errorf("events %v\nwant   %v", got, want)
	}
	o := rep.Outcome
	if o == nil || o.Plan.State != rollout.PlanRolledBack || o.Plan.Step != 0 || !strings.Contains(o.Plan.Reason, "NaN") {
		t.Fatalf("outcome %+v, want rolled back at the first step for NaN answers", o)
	}
	if !strings.Contains(out, "reason: "+o.Plan.Reason) {
		t.Errorf("the timeline lacks the rollback's reason %q", o.Plan.Reason)
	}
	if !maps.Equal(rep.Weights, map[string]float64{"1": 100}) {
		t.Errorf("weights after the story %v, want v1 at 100 %%", rep.Weights)
	}
	l := rep.Load
	if l.Failed != 0 || l.Requests == 0 {
		t.Errorf("load: %d requests, %d failed (%s)", l.Requests, l.Failed, l.FirstError)
	}
	if v1 := l.Last["1"]; !v1.After(o.Plan.Ended.Add(100 * time.Millisecond)) {
		t.Errorf("v1 last answered at %v, not after the rollback at %v", v1, o.Plan.Ended)
	}
	// The NaN answers some callers got are the canary's first interval
	// at 5 %, all from v2.
	if l.NonFinite > l.ByVersion["2"] {
		t.Errorf("%d NaN answers, more than v2 gave (%d)", l.NonFinite, l.ByVersion["2"])
	}
	t.Logf("blast radius: %d of %d answers were NaN, all before the rollback", l.NonFinite, l.Requests)
}

// A story that cannot finish in time ends with the reason, and stops all
// it started (TestMain checks for goroutines left behind).
func TestTimeout(t *testing.T) {
	rep, _, err := runQuickErr(t, "-timeout", "4s", "-shift-after", "100000")
	if err == nil || !strings.Contains(err.Error(), "waiting for a version after v1") {
		t.Fatalf("err %v, want the story to time out waiting for v2", err)
	}
	if rep.Load.Requests == 0 || rep.Load.Failed != 0 {
		t.Errorf("load %+v: want traffic served without failures until the end", rep.Load)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-steps", "5,0"}, {"-steps", "5,100"}, {"-steps", "x"}, {"-rate", "0"}, {"-window", "10"},
		{"-hold", "0s"}, {"-train-rows", "10"}, {"-nope"}, {"extra"},
	} {
		if _, err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
