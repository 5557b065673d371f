package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Names from callers (an admin API's URL) never reach the file system
// unchecked.
func TestNamesFromCallersAreValidated(t *testing.T) {
	outside := tree(t, map[string]string{"secret/1/model.onnx": "ok stolen"})
	root := tree(t, map[string]string{"m/1/model.onnx": "ok"})
	f := newLoader()
	r := open(t, root, f, repository.WithExplicit())
	ctx := context.Background()
	rel, _ := filepath.Rel(root, filepath.Join(outside, "secret"))
	for _, tc := range []struct{ model, version string }{
		{rel, ""},
		{"../" + filepath.Base(outside), ""},
		{"..", ""},
		{".", ""},
		{"", ""},
		{"m/1", ""},
		{`m\1`, ""},
		{"m\x00", ""},
		{".hidden", ""},
		{"m", "../m/1"},
		{"m", "01"},
		{"m", "0"},
		{"m", "-1"},
		{"m", "1/.."},
		{"m", "99999999999999999999"},
		{strings.Repeat("a", 200), ""},
	} {
		for op, call := range map[string]func(context.Context, string, string) error{"Load": r.Load, "Unload": r.Unload} {
			err := call(ctx, tc.model, tc.version)
			if serving.CodeOf(err) != serving.InvalidArgument {
				t.Errorf("%s(%q, %q): %v, want InvalidArgument", op, tc.model, tc.version, err)
			}
		}
	}
	if f.loads.Load() != 0 {
		t.Errorf("%d loads happened for invalid names", f.loads.Load())
	}
	if err := r.Load(ctx, "nosuch", ""); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("Load of a missing model: %v, want NotFound", err)
	}
	if err := r.Load(ctx, "m", "7"); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("Load of a missing version: %v, want NotFound", err)
	}
}

// Symlinks are followed only while they stay inside the root.
func TestSymlinksOutOfTheRootAreRefused(t *testing.T) {
	outside := tree(t, map[string]string{
		"model/1/model.onnx": "ok stolen model",
		"version/model.onnx": "ok stolen version",
		"file.onnx":          "ok stolen file",
		"req.json":           `{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}`,
	})
	root := tree(t, map[string]string{
		"inner/1/model.onnx":  "ok inner",
		"shared/7/model.onnx": "ok shared",
		"warm/config.json":    `{"model_warmup": [{"request_file": "req.json"}]}`,
		"warm/1/model.onnx":   "ok",
	})
	symlink(t, filepath.Join(outside, "model"), filepath.Join(root, "evil-model"))
	symlink(t, filepath.Join(outside, "version"), filepath.Join(root, "evil-version", "1"))
	symlink(t, filepath.Join(outside, "file.onnx"), filepath.Join(root, "evil-file", "1", "model.onnx"))
	symlink(t, filepath.Join(outside, "req.json"), filepath.Join(root, "warm", "req.json"))
	// Links that stay inside are fine: a model aliasing another's directory,
	// a version linking to a shared one.
	symlink(t, "inner", filepath.Join(root, "alias"))
	symlink(t, "../shared/7", filepath.Join(root, "linked", "3"))

	var logs logBuffer
	f := newLoader()
	r := open(t, root, f, repository.WithLogger(logs.logger()))
	for model, want := range map[string]string{
		"inner": "inner/1:ok inner", "alias": "alias/1:ok inner", "linked": "linked/3:ok shared",
	} {
		if who, _, err := ask(t, r, model, ""); err != nil || who != want {
			t.Errorf("%s: %q, %v; want %q", model, who, err, want)
		}
	}
	if _, ok := r.Router("evil-model"); ok {
		t.Error("a model directory linking out of the root is served")
	}
	if !strings.Contains(logs.String(), "evil-model") {
		t.Errorf("the refused link is not logged:\n%s", logs.String())
	}
	for _, model := range []string{"evil-version", "evil-file"} {
		v := versionStatus(r, model, "1")
		if v.State != repository.StateFailed || !strings.Contains(v.Reason, "leads out of") {
			t.Errorf("%s/1: %+v, want failed: leads out of the root", model, v)
		}
	}
	v := versionStatus(r, "warm", "1")
	if v.State != repository.StateFailed || !strings.Contains(v.Reason, "leads out of") {
		t.Errorf("warm-up request file linking out: %+v, want failed", v)
	}
	for who := range strings.SplitSeq("stolen model,stolen version,stolen file", ",") {
		for _, m := range r.Models() {
			if got, _, _ := ask(t, r, m, ""); strings.Contains(got, who) {
				t.Errorf("model %s serves a file from outside the root: %q", m, got)
			}
		}
	}
	if f.live.Load() != 4 { // inner, alias, linked, shared
		t.Errorf("%d models loaded, want the 4 inside the root: %+v", f.live.Load(), r.Status())
	}
}

func TestConfigPathsCannotClimb(t *testing.T) {
	for _, cfg := range []string{
		`{"model_warmup": [{"request_file": "../other/req.json"}]}`,
		`{"model_warmup": [{"request_file": "/etc/passwd"}]}`,
		`{"model_warmup": [{"request_file": ".secret"}]}`,
		`{"default_model_filename": "../1/model.onnx"}`,
		`{"default_model_filename": "sub/model.onnx"}`,
	} {
		if _, err := repository.ParseConfig([]byte(cfg)); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("ParseConfig(%s): %v, want InvalidArgument", cfg, err)
		}
	}
}

// Triton's explicit model control: nothing but the named models at start,
// Load and Unload after, and an unloaded model stays unloaded while the
// watcher runs. Sync is what the watcher does each poll: when it returns,
// a poll has run since Unload, so the assertions after it cannot pass for
// want of a poll.
func TestExplicitControl(t *testing.T) {
	root := tree(t, map[string]string{"a/1/model.onnx": "ok a", "b/1/model.onnx": "ok b", "b/2/model.onnx": "ok b2"})
	f := newLoader()
	r := open(t, root, f, repository.WithExplicit("a"), repository.WithPollInterval(time.Millisecond))
	ctx := context.Background()
	if got := strings.Join(r.Models(), ","); got != "a" {
		t.Fatalf("models at start %q, want only a", got)
	}
	if err := r.Load(ctx, "b", ""); err != nil {
		t.Fatalf("Load b: %v", err)
	}
	if who, _, err := ask(t, r, "b", ""); err != nil || who != "b/2:ok b2" {
		t.Fatalf("b answers %q, %v", who, err)
	}
	// Unloading the serving version falls back to the previous one.
	if err := r.Unload(ctx, "b", "2"); err != nil {
		t.Fatalf("Unload b/2: %v", err)
	}
	if who, _, err := ask(t, r, "b", ""); err != nil || who != "b/1:ok b" {
		t.Errorf("after unloading b/2, b answers %q, %v; want version 1", who, err)
	}
	loads := f.loads.Load()
	if err := r.Sync(ctx); err != nil { // a poll; it may not bring b/2 back
		t.Fatal(err)
	}
	if got := states(r, "b"); got != "1:ready" || f.loads.Load() != loads {
		t.Errorf("b after a poll: %s with %d more loads, want 1:ready and none", got, f.loads.Load()-loads)
	}
	if err := r.Load(ctx, "b", "2"); err != nil {
		t.Fatalf("Load b/2: %v", err)
	}
	if who, _, _ := ask(t, r, "b", ""); who != "b/2:ok b2" {
		t.Errorf("after Load b/2: %q", who)
	}
	if err := r.Load(ctx, "b", "1"); serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "latest 1") {
		t.Errorf("Load of a version the policy does not select: %v, want InvalidArgument naming the policy", err)
	}
	if err := r.Unload(ctx, "a", ""); err != nil {
		t.Fatalf("Unload a: %v", err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Router("a"); ok {
		t.Error("a came back after Unload")
	}
	if err := r.Unload(ctx, "a", ""); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("second Unload of a: %v, want NotFound", err)
	}
	if err := r.Load(ctx, "a", ""); err != nil {
		t.Errorf("Load a again: %v", err)
	}
	if f.live.Load() != 2 {
		t.Errorf("%d models open, want 2 (a/1 and b/2)", f.live.Load())
	}
}

// In the default mode too, Unload wins over the watcher until Load.
func TestUnloadSticksWhilePolling(t *testing.T) {
	root := tree(t, map[string]string{"a/1/model.onnx": "ok"})
	f := newLoader()
	r := open(t, root, f, repository.WithPollInterval(time.Millisecond))
	if err := r.Unload(context.Background(), "a", ""); err != nil {
		t.Fatal(err)
	}
	loads := f.loads.Load()
	if err := r.Sync(context.Background()); err != nil { // a poll, as the watcher's
		t.Fatal(err)
	}
	if len(r.Models()) != 0 || f.live.Load() != 0 || f.loads.Load() != loads {
		t.Errorf("after Unload and a poll: models %v, %d open, %d loads", r.Models(), f.live.Load(), f.loads.Load()-loads)
	}
	if err := r.Load(context.Background(), "a", ""); err != nil {
		t.Fatal(err)
	}
	if who, _, err := ask(t, r, "a", ""); err != nil || who != "a/1:ok" {
		t.Errorf("after Load: %q, %v", who, err)
	}
}

// A loader that hangs, panics or returns nothing fails that version with
// the reason; the rest of the repository loads.
func TestLoaderMisbehaves(t *testing.T) {
	root := tree(t, map[string]string{
		"hangs/1/model.onnx":  "hang",
		"panics/1/model.onnx": "panic",
		"nil/1/model.onnx":    "nil",
		"fine/1/model.onnx":   "ok",
	})
	f := newLoader()
	r := open(t, root, f, repository.WithLoadTimeout(50*time.Millisecond))
	for model, reason := range map[string]string{
		"hangs":  "deadline exceeded",
		"panics": "load panicked: fake loader panic",
		"nil":    "no Predictor and no error",
	} {
		v := versionStatus(r, model, "1")
		if v.State != repository.StateFailed || !strings.Contains(v.Reason, reason) {
			t.Errorf("%s: %+v, want failed with %q", model, v, reason)
		}
	}
	if err := r.Load(context.Background(), "hangs", "1"); serving.CodeOf(err) != serving.DeadlineExceeded {
		t.Errorf("Load of the hanging model: %v, want DeadlineExceeded", err)
	}
	if who, _, err := ask(t, r, "fine", ""); err != nil || who != "fine/1:ok" {
		t.Errorf("fine: %q, %v", who, err)
	}
}

// Close ends a load in progress instead of waiting for the load timeout.
func TestCloseEndsLoads(t *testing.T) {
	root := tree(t, map[string]string{"a/1/model.onnx": "ok"})
	f := newLoader()
	r := open(t, root, f, repository.WithExplicit())
	write(t, root, map[string]string{"a/1/model.onnx": "hang"})
	done := make(chan error, 1)
	go func() { done <- r.Load(context.Background(), "a", "") }()
	poll.Until(t, "the load started", func() bool { return f.loads.Load() == 1 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("a load cut short by Close reported success")
	}
}
