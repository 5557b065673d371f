package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// trainV1 is the model the story starts with: fitted on labelled history
// from before the drift, checked on a fifth of it held out, and written as
// version 1 with the drift profile of its training rows.
func trainV1(o *options, tl *timeline) error {
	w := newWorld(o.seed)
	xs, ys := w.sample(before, o.history)
	cut := len(xs) * 4 / 5
	m, err := fit(xs[:cut], ys[:cut], defaultTrain)
	if err != nil {
		return err
	}
	prof, err := buildProfile("1", xs[:cut], m)
	if err != nil {
		return err
	}
	ref, err := qualityReference("1", m, xs[cut:], ys[cut:])
	if err != nil {
		return err
	}
	if err := writeConfig(o.repoDir()); err != nil {
		return err
	}
	dir, err := writeVersion(o.repoDir(), "1", m, prof, ref)
	if err != nil {
		return err
	}
	tl.say("v1 trained on %d labelled historical transactions: AUC %.3f on %d held out; written to %s with its drift profile and quality reference",
		cut, aucOf(m, xs[cut:], ys[cut:]), len(xs)-cut, dir)
	return nil
}

// aucOf is m's AUC on labelled rows.
func aucOf(m logistic, xs [][numFeatures]float32, ys []bool) float64 {
	s := make([]float64, len(xs))
	for i, x := range xs {
		s[i] = m.score(x)
	}
	return auc(s, ys)
}

// nightly is the batch half of the platform: yesterday's transactions, a
// Parquet file, scored by version 1 with batch/job into Parquet parts,
// resumable and with a summary, as a CronJob would run it.
func nightly(ctx context.Context, o *options, tl *timeline) error {
	input := filepath.Join(o.dir, "nightly", "transactions.parquet")
	if err := writeTransactions(input, newWorld(o.seed+1), o.nightlyRows); err != nil {
		return fmt.Errorf("nightly dataset: %w", err)
	}
	opts := []onnx.Option{onnx.WithName(modelName), onnx.WithVersion("1"), onnx.WithIntraOpThreads(1)}
	if o.ortLib != "" {
		opts = append(opts, onnx.WithLibraryPath(o.ortLib))
	}
	m, err := onnx.Load(filepath.Join(o.repoDir(), modelName, "1", "model.onnx"), opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	out := filepath.Join(o.dir, "nightly", "scores")
	s, err := job.Run(ctx, m, input, out,
		job.WithSchema(rowio.Schema{
			Inputs: []rowio.Input{{Name: "features", Columns: onnxbuild.FraudFeatures}},
			Keys:   []rowio.Field{{Name: "id", Type: serving.Int64}},
		}),
		job.WithBatchRows(1024), job.WithWorkers(2))
	if err != nil {
		return fmt.Errorf("nightly job: %w", err)
	}
	tl.add(time.Now(), evNightly, "nightly batch job: %d transactions scored with v1 into %s (%.0f rows/s)", s.Rows, out, s.RowsPerSecond)
	tl.say("nightly job summary:\n  %s", strings.ReplaceAll(strings.TrimSpace(s.String()), "\n", "\n  "))
	return nil
}

// writeTransactions writes n transactions of the world before the drift
// to a Parquet file: an INT64 id and one FP32 column per feature, the
// layout a feature store exports. The file appears whole (rowio's atomic
// file) or not at all.
func writeTransactions(path string, w *world, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	a, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer a.Abort()
	bw := bufio.NewWriterSize(a, 1<<20)
	pw, err := rowio.NewWriter(rowio.Parquet, bw)
	if err != nil {
		return err
	}
	const block = 8192
	for lo := 0; lo < n; lo += block {
		rows := min(block, n-lo)
		ids := make([]int64, rows)
		cols := make([][]float32, numFeatures)
		for j := range cols {
			cols[j] = make([]float32, rows)
		}
		for r := range rows {
			ids[r] = int64(lo + r)
			x, _ := w.draw(before)
			for j, v := range x {
				cols[j][r] = v
			}
		}
		f := &rowio.Frame{Rows: rows, Cols: []rowio.Col{{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids}}}
		for j, name := range onnxbuild.FraudFeatures {
			f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.FP32}, Data: cols[j]})
		}
		if err := pw.Write(f); err != nil {
			return err
		}
	}
	if err := pw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return a.Commit()
}
