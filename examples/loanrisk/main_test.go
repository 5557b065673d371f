package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// The story, shortened: the overnight job scores every application with
// both labels in use, the real-time answers carry the string label and
// the ZipMap probabilities, and the car-loan promotion raises drift on the
// categorical purpose column and the label it drives, never on the
// numeric columns it leaves alone.
func TestLoanRisk(t *testing.T) {
	lib := orttest.Library(t)
	var out strings.Builder
	s, err := run(context.Background(), []string{
		"-ort-lib", lib, "-model", "../../testdata/models/tabular/loan_columns.onnx",
		"-overnight", "3000", "-window", "300", "-dir", t.TempDir(),
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if s.overnight.Rows != 3000 || s.overnight.Errors != 0 {
		t.Errorf("overnight: %d rows, %d errors", s.overnight.Rows, s.overnight.Errors)
	}
	if !slices.Equal(s.labels, []string{"high", "low"}) {
		t.Errorf("class labels %q", s.labels)
	}
	for _, want := range []string{`"name":"output_label","datatype":"BYTES","shape":[1],"data":["high"]`, `"name":"output_probability","datatype":"FP32","shape":[1,2]`} {
		if !strings.Contains(s.v2, want) {
			t.Errorf("V2 answer %s lacks %s", s.v2, want)
		}
	}
	if want := `{"predictions":[{"output_label":"high","output_probability":[0.5866176,0.41338244]}]}`; strings.TrimSpace(s.v1) != want {
		t.Errorf("V1 answer %s, want %s", s.v1, want)
	}
	if want := `"data":["0.586618:0:high","0.413382:1:low"]`; !strings.Contains(s.classes, want) {
		t.Errorf("classification answer %s lacks %s", s.classes, want)
	}
	if !slices.Contains(s.alarmed, "purpose") {
		t.Errorf("no drift on purpose: alarmed %v (%s)", s.alarmed, s.reason)
	}
	for _, f := range s.alarmed {
		if f == "age" || f == "income" || f == "n_loans" {
			t.Errorf("drift on %s, which the promotion does not change: %s", f, s.reason)
		}
	}
	if !strings.Contains(out.String(), `high `) || !strings.Contains(out.String(), `low `) {
		t.Errorf("the summary does not count both labels:\n%s", out.String())
	}
}
