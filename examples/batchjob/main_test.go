package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rowio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// TestScoresAGeneratedDataset runs the CLI on a small generated dataset
// with the real demo model, then again (a finished job is skipped), and
// as two shards.
func TestScoresAGeneratedDataset(t *testing.T) {
	lib := orttest.Library(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "tx.parquet")
	args := []string{"-ort-lib", lib, "-model", "../../testdata/models/fraud.onnx", "-input", input,
		"-generate", "5000", "-part-rows", "2000", "-batch-rows", "256", "-progress", "1ms"}
	var out, errs bytes.Buffer
	if err := run(context.Background(), append(args, "-output", filepath.Join(dir, "out")), &out, &errs); err != nil {
		t.Fatalf("run: %v\n%s%s", err, out.String(), errs.String())
	}
	text := out.String()
	for _, re := range []string{`generating 5000 rows`, `5000 rows scored, 0 failed`, `3 parts written`, `output score: n=5000 min=[\d.e-]+ mean=0\.\d+`, `memory: peak RSS \d+ MiB`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("output lacks %s:\n%s", re, text)
		}
	}
	if !strings.Contains(errs.String(), "job: 100.0% read, 5000 rows") {
		t.Errorf("progress lines: %q", errs.String())
	}
	m, err := job.ReadManifest(filepath.Join(dir, "out"))
	if err != nil || !m.Complete || len(m.Parts) != 3 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	r, err := rowio.Open(filepath.Join(dir, "out", m.Parts[2].File), 0, []rowio.Field{{Name: "id", Type: 9}, {Name: "score", Type: 12}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var f rowio.Frame
	if err := r.Read(&f, 5000); err != nil || f.Len() != 1000 || f.Cols[0].Data.([]int64)[0] != 4000 {
		t.Errorf("last part: %d rows, %v", f.Len(), err)
	}

	out.Reset()
	if err := run(context.Background(), append(args, "-output", filepath.Join(dir, "out")), &out, &errs); err != nil || !strings.Contains(out.String(), "0 rows scored, 0 failed") {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
	for i := range 2 {
		t.Setenv(job.EnvShardIndex, string(rune('0'+i)))
		t.Setenv(job.EnvShardCount, "2")
		out.Reset()
		if err := run(context.Background(), append(args, "-output", filepath.Join(dir, "sharded"), "-format", "csv"), &out, &errs); err != nil {
			t.Fatal(err)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "sharded", "shard-*", "part-*.csv"))
	if len(parts) != 3 {
		t.Errorf("sharded parts %v, want 3", parts)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-format", "xml"}, {"-shard-count", "2", "-shard-index", "2", "-input", "x.parquet"}, {"extra"}} {
		if err := run(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	os.Unsetenv("unused")
}
