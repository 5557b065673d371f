package repository_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

func TestLayout(t *testing.T) {
	root := tree(t, map[string]string{
		"fraud/1/model.onnx":     "ok one",
		"fraud/2/model.onnx":     "ok two",
		"fraud/README.md":        "not a version",
		"fraud/v3/model.onnx":    "ok ignored: not a number",
		"fraud/03/model.onnx":    "ok ignored: leading zero",
		"fraud/0/model.onnx":     "ok ignored: versions start at 1",
		"fraud/.4/model.onnx":    "ok ignored: hidden",
		"other/7/model.onnx":     "ok seven",
		"empty/1/":               "",
		"bad name/1/model.onnx":  "ok ignored: a space",
		".hidden/1/model.onnx":   "ok ignored: hidden",
		"stray-file":             "not a model",
		"custom/config.json":     `{"default_model_filename": "net.bin"}`,
		"custom/1/net.bin":       "ok custom file name",
		"custom/1/model.onnx":    "fail: not this one",
		"nested/1/sub/data.bin":  "external data",
		"nested/1/model.onnx":    "ok nested",
		"noversions/config.json": `{}`,
	})
	var logs logBuffer
	f := newLoader()
	r := open(t, root, f, repository.WithLogger(logs.logger()))

	if got, want := strings.Join(r.Models(), ","), "custom,empty,fraud,nested,noversions,other"; got != want {
		t.Errorf("Models() = %s, want %s", got, want)
	}
	for model, want := range map[string]string{
		"fraud":  "2:ready", // latest 1 by default
		"other":  "7:ready",
		"custom": "1:ready",
		"nested": "1:ready",
		"empty":  "1:failed",
	} {
		if got := states(r, model); got != want {
			t.Errorf("%s: %s, want %s", model, got, want)
		}
	}
	if who, _, err := ask(t, r, "custom", ""); err != nil || who != "custom/1:ok custom file name" {
		t.Errorf("custom answered %q, %v: default_model_filename not used", who, err)
	}
	if v := versionStatus(r, "empty", "1"); !strings.Contains(v.Reason, "no model file model.onnx") {
		t.Errorf("empty/1 reason %q, want it to name the missing model file", v.Reason)
	}
	if v := versionStatus(r, "fraud", "2"); v.LoadedAt.IsZero() || len(v.Fingerprint) != 16 {
		t.Errorf("fraud/2 status %+v: want a load time and a fingerprint", v)
	}
	for _, entry := range []string{"bad name", "fraud/v3", "fraud/03", "fraud/0"} {
		if !strings.Contains(logs.String(), entry) {
			t.Errorf("log does not mention the ignored entry %q:\n%s", entry, logs.String())
		}
	}
	if strings.Contains(logs.String(), "hidden") {
		t.Errorf("hidden entries should be ignored silently:\n%s", logs.String())
	}
	// The log names every ignored entry once, not at every poll.
	before := strings.Count(logs.String(), "bad name")
	resync(t, r)
	if after := strings.Count(logs.String(), "bad name"); after != before {
		t.Errorf("the ignored entry was logged again at the next sync (%d → %d times)", before, after)
	}
}

func TestVersionPolicy(t *testing.T) {
	for _, tc := range []struct {
		config, want string
	}{
		{``, "3:ready"},
		{`{"version_policy": {"latest": {"num_versions": 2}}}`, "2:ready 3:ready"},
		{`{"version_policy": {"all": {}}}`, "1:ready 2:ready 3:ready"},
		{`{"version_policy": {"specific": {"versions": [1, 3, 9]}}}`, "1:ready 3:ready"},
	} {
		t.Run(tc.config, func(t *testing.T) {
			files := map[string]string{"m/1/model.onnx": "ok", "m/2/model.onnx": "ok", "m/3/model.onnx": "ok"}
			if tc.config != "" {
				files["m/config.json"] = tc.config
			}
			r := open(t, tree(t, files), newLoader())
			if got := states(r, "m"); got != tc.want {
				t.Errorf("versions %s, want %s", got, tc.want)
			}
		})
	}
}

// A version that fails does not count towards "latest N": the next version
// down serves instead, and the failed one stays listed with its reason.
func TestLatestFallsBackPastFailures(t *testing.T) {
	root := tree(t, map[string]string{
		"m/1/model.onnx": "ok one",
		"m/2/model.onnx": "ok two",
		"m/3/model.onnx": "fail: truncated",
	})
	r := open(t, root, newLoader())
	if got, want := states(r, "m"), "2:ready 3:failed"; got != want {
		t.Fatalf("versions %s, want %s", got, want)
	}
	if who, v, err := ask(t, r, "m", ""); err != nil || who != "m/2:ok two" || v != "2" {
		t.Errorf("unversioned request answered by %q (version %q), %v; want version 2", who, v, err)
	}
	if _, _, err := ask(t, r, "m", "3"); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("request pinned to the failed version: %v, want Unavailable", err)
	}
	if v := versionStatus(r, "m", "3"); !strings.Contains(v.Reason, "truncated") {
		t.Errorf("failed version's reason %q, want the loader's error", v.Reason)
	}
	// Fixing the file loads it, moves traffic and unloads version 2.
	write(t, root, map[string]string{"m/3/model.onnx": "ok three"})
	resync(t, r)
	if got, want := states(r, "m"), "3:ready"; got != want {
		t.Errorf("after the fix: %s, want %s", got, want)
	}
	if who, _, err := ask(t, r, "m", ""); err != nil || who != "m/3:ok three" {
		t.Errorf("after the fix answered by %q, %v", who, err)
	}
}

func TestTrafficLatest(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}}`,
		"m/1/model.onnx": "ok",
	})
	r := open(t, root, newLoader())
	write(t, root, map[string]string{"m/2/model.onnx": "ok"})
	resync(t, r)
	if who, v, err := ask(t, r, "m", ""); err != nil || v != "2" || who != "m/2:ok" {
		t.Errorf("after adding version 2, unversioned requests reach %q (%q), %v", who, v, err)
	}
	if _, v, err := ask(t, r, "m", "1"); err != nil || v != "1" {
		t.Errorf("pinned to version 1: %q, %v", v, err)
	}
	if err := os.RemoveAll(filepath.Join(root, "m", "2")); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if _, v, err := ask(t, r, "m", ""); err != nil || v != "1" {
		t.Errorf("after removing version 2, unversioned requests reach %q, %v; want 1", v, err)
	}
	if _, _, err := ask(t, r, "m", "2"); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("pinned to the removed version: %v, want NotFound", err)
	}
}

func TestTrafficManual(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}, "traffic": "manual"}`,
		"m/1/model.onnx": "ok",
		"m/2/model.onnx": "ok",
	})
	r := open(t, root, newLoader())
	// At start the highest ready version takes the traffic, deterministically.
	if _, v, err := ask(t, r, "m", ""); err != nil || v != "2" {
		t.Fatalf("at start unversioned requests reach %q, %v; want 2", v, err)
	}
	write(t, root, map[string]string{"m/3/model.onnx": "ok"})
	resync(t, r)
	for range 20 {
		if _, v, err := ask(t, r, "m", ""); err != nil || v != "2" {
			t.Fatalf("a new version in manual mode took traffic: %q, %v", v, err)
		}
	}
	if _, v, err := ask(t, r, "m", "3"); err != nil || v != "3" {
		t.Errorf("the new version pinned: %q, %v", v, err)
	}
	// Removing the version that carries the traffic hands it to the highest
	// ready one, so the model stays reachable.
	if err := os.RemoveAll(filepath.Join(root, "m", "2")); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if _, v, err := ask(t, r, "m", ""); err != nil || v != "3" {
		t.Errorf("after removing the weighted version: %q, %v; want 3", v, err)
	}
	// A canary whose files are deleted hands its share to the stable
	// version and unloads; the operator's split is otherwise left alone.
	write(t, root, map[string]string{"m/4/model.onnx": "ok"})
	resync(t, r)
	rt, _ := r.Router("m")
	if err := rt.SetWeights(map[string]float64{"3": 90, "4": 10}); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if w := rt.Weights(); w["3"] != 90 || w["4"] != 10 {
		t.Errorf("a sync changed the operator's weights: %v", w)
	}
	if err := os.RemoveAll(filepath.Join(root, "m", "4")); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if w, got := rt.Weights(), states(r, "m"); w["3"] != 100 || got != "1:ready 3:ready" {
		t.Errorf("after deleting the canary: weights %v, versions %s", w, got)
	}
}

func TestConfigErrors(t *testing.T) {
	root := tree(t, map[string]string{"m/1/model.onnx": "ok one"})
	var logs logBuffer
	r := open(t, root, newLoader(), repository.WithLogger(logs.logger()))
	write(t, root, map[string]string{
		"m/config.json":  `{"version_policy": {"latest": {"num_version": 2}}}`,
		"m/2/model.onnx": "ok two",
	})
	resync(t, r)
	st := r.Status().Models[0]
	if !strings.Contains(st.Reason, `unknown field "num_version"`) {
		t.Errorf("model reason %q, want the config error", st.Reason)
	}
	if who, _, err := ask(t, r, "m", ""); err != nil || who != "m/1:ok one" {
		t.Errorf("with a broken config the loaded version should keep serving: %q, %v", who, err)
	}
	if !strings.Contains(logs.String(), "num_version") {
		t.Errorf("the config error is not logged:\n%s", logs.String())
	}
	err := r.Load(context.Background(), "m", "")
	if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "num_version") {
		t.Errorf("Load with a broken config: %v, want InvalidArgument naming the field", err)
	}
	write(t, root, map[string]string{"m/config.json": `{"version_policy": {"latest": {"num_versions": 2}}}`})
	resync(t, r)
	if got, want := states(r, "m"), "1:ready 2:ready"; got != want || r.Status().Models[0].Reason != "" {
		t.Errorf("after the fix: %s (reason %q), want %s", got, r.Status().Models[0].Reason, want)
	}
}

// A model whose first config is broken is listed with the reason and no
// versions, and served once the config is fixed.
func TestBrokenConfigAtStart(t *testing.T) {
	root := tree(t, map[string]string{"m/config.json": `{"traffic": "sideways"}`, "m/1/model.onnx": "ok"})
	r := open(t, root, newLoader())
	st := r.Status().Models
	if len(st) != 1 || !strings.Contains(st[0].Reason, "sideways") || len(st[0].Versions) != 0 {
		t.Fatalf("status %+v, want the model listed with the config error", st)
	}
	write(t, root, map[string]string{"m/config.json": `{"traffic": "manual"}`})
	resync(t, r)
	if got := states(r, "m"); got != "1:ready" {
		t.Errorf("after the fix: %s", got)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	f := newLoader()
	if _, err := repository.Open(ctx, filepath.Join(t.TempDir(), "missing"), f.Load); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Open on a missing root: %v, want InvalidArgument", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, file, f.Load); err == nil {
		t.Error("Open on a file: no error")
	}
	if _, err := repository.Open(ctx, t.TempDir(), nil); err == nil {
		t.Error("Open without a LoadFunc: no error")
	}
}

func TestCloseAndHook(t *testing.T) {
	root := tree(t, map[string]string{"a/1/model.onnx": "ok", "b/1/model.onnx": "ok"})
	f := newLoader()
	var hooked []string
	r, err := repository.Open(context.Background(), root, f.Load, repository.WithLogger(quiet), repository.WithPollInterval(time.Millisecond),
		repository.WithModelHook(func(model string, rt *rollout.Router) {
			hooked = append(hooked, fmt.Sprintf("%s:%v", model, rt != nil)) // calls are serialised
		}))
	if err != nil {
		t.Fatal(err)
	}
	if f.live.Load() != 2 {
		t.Fatalf("%d models loaded, want 2", f.live.Load())
	}
	rt, _ := r.Router("a")
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	slices.Sort(hooked)
	if got, want := strings.Join(hooked, " "), "a:false a:true b:false b:true"; got != want {
		t.Errorf("hook calls %s, want %s", got, want)
	}
	if n := f.live.Load(); n != 0 {
		t.Errorf("%d Predictors open after Close", n)
	}
	if _, err := rt.Predict(context.Background(), &serving.Request{}); err == nil {
		t.Error("a closed repository's router still answers")
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"Sync":   r.Sync(ctx),
		"Load":   r.Load(ctx, "a", ""),
		"Unload": r.Unload(ctx, "a", ""),
	} {
		if !errors.Is(err, repository.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
