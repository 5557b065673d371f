package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

// modelName is the story's one model.
const modelName = "fraud"

// modelConfig is the model's config.json in the repository (package
// repository documents every field):
//
//   - version_policy latest 2: a new version loads beside the one serving,
//     which stays loaded as the rollback target, instead of replacing it at
//     once as Triton's default (latest 1) would.
//   - traffic manual: a new version joins at 0 %; only the controller's
//     shadow and canary plan give it traffic, never the repository.
//   - model_warmup: every version answers 5 random batches of 8 rows before
//     it is put in the router, so the first canary request does not pay
//     ONNX Runtime's first-run allocations.
var modelConfig = map[string]any{
	"version_policy": map[string]any{"latest": map[string]any{"num_versions": 2}},
	"traffic":        "manual",
	"parameters":     map[string]any{"intra_op_threads": 1},
	"model_warmup": []any{map[string]any{
		"name": "random-batch", "count": 5,
		"inputs": map[string]any{"features": map[string]any{"data_type": "FP32", "dims": []int{8, 8}, "random_data": true}},
	}},
}

// writeConfig writes the model's config.json, checked as the repository
// will read it.
func writeConfig(repoDir string) error {
	b, err := json.MarshalIndent(modelConfig, "", "  ")
	if err != nil {
		return err
	}
	if _, err := repository.ParseConfig(b); err != nil {
		return err
	}
	dir := filepath.Join(repoDir, modelName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, repository.ConfigFile), append(b, '\n'), 0o644)
}

// writeVersion writes one version of the model into the repository: its
// ONNX file and, beside it, the drift profile of the data it was trained
// on. Both go into a hidden directory that is then renamed into place,
// because the repository polls the disk: a rename makes the version
// appear whole, never a model file without its profile (the repository
// ignores hidden entries).
func writeVersion(repoDir, version string, m logistic, prof *drift.Profile, ref *quality.Reference) (string, error) {
	b, err := m.onnx()
	if err != nil {
		return "", err
	}
	final := filepath.Join(repoDir, modelName, version)
	tmp := filepath.Join(repoDir, modelName, ".incoming-"+version)
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	err = errors.Join(
		os.WriteFile(filepath.Join(tmp, "model.onnx"), b, 0o644),
		prof.WriteFile(filepath.Join(tmp, drift.ProfileFileName)),
		ref.WriteFile(filepath.Join(tmp, quality.ReferenceFileName)))
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	return final, nil
}

// qualityReference is what package quality judges a version against: its
// scores on held-out labelled rows (the rows it was not fitted on), from
// which the calibration for estimates without labels and each metric's
// sampling error come.
func qualityReference(version string, m logistic, xs [][numFeatures]float32, ys []bool) (*quality.Reference, error) {
	b, err := quality.NewReferenceBuilder(modelName, version, quality.BinaryTask("score"))
	if err != nil {
		return nil, err
	}
	for i, x := range xs {
		label := 0.0
		if ys[i] {
			label = 1
		}
		if err := b.Add([]float64{float64(float32(m.score(x)))}, label); err != nil {
			return nil, err
		}
	}
	return b.Reference()
}

// nextVersion is one above the highest version directory of the model.
func nextVersion(repoDir string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(repoDir, modelName))
	if err != nil {
		return "", err
	}
	top := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > top {
			top = n
		}
	}
	return strconv.Itoa(top + 1), nil
}

// driftFeatures are what the monitor compares: the 8 inputs by name, the
// two flags as categories (a share moving, not a mean), and the score,
// whose distribution moves when the model meets traffic it was not
// trained on.
func driftFeatures() []drift.Feature {
	fs := drift.Columns("features", onnxbuild.FraudFeatures...)
	for i := range fs {
		if fs[i].Name == "card_present" || fs[i].Name == "foreign" {
			fs[i].Kind = drift.Categorical
		}
	}
	return append(fs, drift.NumericalFeature("score", drift.Output("score")))
}

// buildProfile is the drift reference of a version: the rows it was
// trained on and its scores of them, added as requests and responses so
// that each value is read exactly as the monitor reads live traffic.
func buildProfile(version string, xs [][numFeatures]float32, m logistic) (*drift.Profile, error) {
	b, err := drift.NewProfileBuilder(modelName, version, driftFeatures(), drift.WithMultivariate(0))
	if err != nil {
		return nil, err
	}
	for chunk := range slices.Chunk(xs, 1024) {
		feats := make([]float32, 0, len(chunk)*numFeatures)
		scores := make([]float32, len(chunk))
		for i, x := range chunk {
			feats = append(feats, x[:]...)
			scores[i] = float32(m.score(x))
		}
		in, err := serving.NewTensor("features", []int64{int64(len(chunk)), numFeatures}, feats)
		if err != nil {
			return nil, err
		}
		out, err := serving.NewTensor("score", []int64{int64(len(chunk)), 1}, scores)
		if err != nil {
			return nil, err
		}
		if err := b.AddRequest(&serving.Request{Model: modelName, Inputs: []serving.Tensor{in}},
			&serving.Response{Model: modelName, Version: version, Outputs: []serving.Tensor{out}}); err != nil {
			return nil, fmt.Errorf("drift profile of version %s: %w", version, err)
		}
	}
	return b.Profile()
}
