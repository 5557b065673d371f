package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/webhook"
)

// Labels reach the file and the labels endpoint only once due (the
// endpoint as one batch in the form package quality's handler reads), and
// a reader never takes half a line: what a writer has not finished waits
// for the next read.
func TestFeedbackIsLateAndWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	posted := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer token" {
			t.Errorf("labels posted without the bearer token")
		}
		posted <- string(b)
	}))
	defer srv.Close()
	fb, err := openFeedback(path, srv.URL, "token", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fb.record("tx-1", true)
	fb.record("tx-2", false)
	got := map[string]bool{}
	lr := labelReader{path: path}
	if err := fb.release(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := lr.read(got); err != nil || len(got) != 0 {
		t.Fatalf("before the delay: %v, %v; want no label", got, err)
	}
	if err := fb.release(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := fb.close(); err != nil {
		t.Fatal(err)
	}
	if got, want := <-posted, `{"labels":[{"id":"tx-1","label":true},{"id":"tx-2","label":false}]}`; got != want {
		t.Errorf("posted %s, want %s", got, want)
	}
	// A line still being written by another writer.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"id":"tx-3","fra`)
	if err := lr.read(got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["tx-1"] || got["tx-2"] {
		t.Fatalf("labels %v, want tx-1 fraud and tx-2 not", got)
	}
	f.WriteString("ud\":true}\n")
	if err := lr.read(got); err != nil || !got["tx-3"] {
		t.Fatalf("labels %v, %v: want tx-3 once its line is whole", got, err)
	}
}

// logRecords writes predictions as the server's loggers do, into a FileSink
// under the log directory (history reads every file below it).
func logRecords(t *testing.T, dir, version string, at time.Time, ids []string, scores []float32) {
	t.Helper()
	sink, err := predlog.NewFileSink(filepath.Join(dir, "fraud-v"+version), rowio.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	var recs []predlog.Record
	for i, id := range ids {
		x := make([]float32, numFeatures)
		x[0] = float32(i)
		in, _ := serving.NewTensor("features", []int64{1, numFeatures}, x)
		out, _ := serving.NewTensor("score", []int64{1, 1}, []float32{scores[i]})
		recs = append(recs, predlog.Record{Time: at, ID: id, Model: modelName, Version: version,
			Inputs: []serving.Tensor{in}, Outputs: []serving.Tensor{out}})
	}
	recs = append(recs, predlog.Record{Time: at, ID: "failed", Model: modelName, Version: version,
		Inputs: recs[0].Inputs, Err: "boom", Code: serving.Internal})
	if err := sink.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeLabels(t *testing.T, path string, labels map[string]bool) {
	t.Helper()
	var b strings.Builder
	for id, fraud := range labels {
		b.WriteString(`{"id":"` + id + `","fraud":` + map[bool]string{true: "true", false: "false"}[fraud] + "}\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The history reads predlog's files through rowio, joins the labels by
// request id, and counts failed calls apart.
func TestHistoryJoinsLogsAndLabels(t *testing.T) {
	dir := t.TempDir()
	at := time.Now().Truncate(time.Microsecond)
	logRecords(t, dir, "1", at, []string{"a", "b", "c"}, []float32{0.1, 0.9, 0.4})
	labels := filepath.Join(dir, "labels.jsonl")
	writeLabels(t, labels, map[string]bool{"a": false, "b": true})
	h := newHistory(dir, labels)
	if err := h.refresh(); err != nil {
		t.Fatal(err)
	}
	if err := h.refresh(); err != nil { // files are read once
		t.Fatal(err)
	}
	rows := h.labelled(func(loggedRow) bool { return true })
	if len(rows) != 2 || h.failed != 1 {
		t.Fatalf("%d labelled rows, %d failed calls; want 2 and 1: %+v", len(rows), h.failed, rows)
	}
	for _, r := range rows {
		want := map[string]float32{"a": 0.1, "b": 0.9}[r.ID]
		if r.Score != want || r.Version != "1" || !r.At.Equal(at) || r.Fraud != (r.ID == "b") || r.X[0] != map[string]float32{"a": 0, "b": 1}[r.ID] {
			t.Errorf("row %+v", r)
		}
	}
}

func TestShadowSane(t *testing.T) {
	snap := func(nonFinite int64, errDiff float64) rollout.Snapshot {
		return rollout.Snapshot{Model: modelName, Canary: rollout.VersionStatus{Version: "2"}, Stable: rollout.VersionStatus{Version: "1"},
			Shadow: &rollout.ShadowSnapshot{Challenger: "2", ErrorRateDiff: errDiff,
				Outputs: []rollout.OutputStats{{Name: "score", Elements: 90, NonFinite: nonFinite}}}}
	}
	if err := shadowSane(context.Background(), snap(0, 0)); err != nil {
		t.Errorf("sound canary: %v", err)
	}
	if err := shadowSane(context.Background(), snap(10, 0)); err == nil || errors.Is(err, rollout.ErrInconclusive) || !strings.Contains(err.Error(), "10 of 100") {
		t.Errorf("NaN answers: %v, want a failure counting them", err)
	}
	if err := shadowSane(context.Background(), snap(0, 0.05)); err == nil || errors.Is(err, rollout.ErrInconclusive) {
		t.Errorf("failing canary: %v, want a failure", err)
	}
	if err := shadowSane(context.Background(), rollout.Snapshot{Canary: rollout.VersionStatus{Version: "2"}}); !errors.Is(err, rollout.ErrInconclusive) {
		t.Errorf("no shadow: %v, want inconclusive", err)
	}
}

// A version appears whole, with its profile and quality reference, and
// the config parses as
// the repository reads it.
func TestWriteVersion(t *testing.T) {
	repo := t.TempDir()
	if err := writeConfig(repo); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(repo, modelName, repository.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.ParseConfig(b); err != nil {
		t.Fatal(err)
	}
	xs, ys := newWorld(3).sample(before, 2000)
	m, err := fit(xs, ys, defaultTrain)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := buildProfile("1", xs, m)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := qualityReference("1", m, xs[1500:], ys[1500:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeVersion(repo, "1", m, prof, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := quality.ReadReference(filepath.Join(repo, modelName, "1", quality.ReferenceFileName)); err != nil {
		t.Errorf("the quality reference beside the model: %v", err)
	}
	if v, err := nextVersion(repo); err != nil || v != "2" {
		t.Errorf("next version %q, %v; want 2", v, err)
	}
	profiles, err := drift.ReadRepository(repo)
	if err != nil || len(profiles) != 1 || profiles[0].Version != "1" {
		t.Fatalf("profiles %v, %v", profiles, err)
	}
	ents, _ := os.ReadDir(filepath.Join(repo, modelName))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// The retrainer's endpoint answers bad input with a JSON 400 and ignores
// alerts that do not call for a retraining.
func TestRetrainerEndpoint(t *testing.T) {
	o := &options{dir: t.TempDir(), trainRows: 200}
	if err := os.MkdirAll(filepath.Join(o.repoDir(), modelName, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(o.repoDir(), modelName, "2"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rt, err := startRetrainer(o, newHistory(o.logDir(), filepath.Join(o.dir, "labels.jsonl")), newTimeline(&syncWriter{w: &out}))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.close()
	send := func(body, sig string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/hooks/drift", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		rt.alert(rec, req)
		if rec.Code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":`) {
			t.Errorf("%d body %q, want JSON", rec.Code, rec.Body)
		}
		return rec.Code
	}
	post := func(body string) int { return send(body, webhook.Sign(rt.key, time.Now(), []byte(body))) }
	if c := post(`{"kind": `); c != http.StatusBadRequest {
		t.Errorf("malformed alert: %d", c)
	}
	// An alert the webhook did not sign, or signed long ago, starts nothing.
	raise := `{"kind": "raised", "model": "fraud", "version": "1"}`
	for what, sig := range map[string]string{
		"unsigned":      "",
		"another key":   webhook.Sign([]byte("guess"), time.Now(), []byte(raise)),
		"an old replay": webhook.Sign(rt.key, time.Now().Add(-time.Hour), []byte(raise)),
		"another body":  webhook.Sign(rt.key, time.Now(), []byte(`{"kind": "cleared"}`)),
	} {
		if c := send(raise, sig); c != http.StatusUnauthorized {
			t.Errorf("%s alert: %d, want 401", what, c)
		}
	}
	for _, a := range []string{
		`{"kind": "cleared", "model": "fraud", "version": "2"}`,
		`{"kind": "raised", "model": "fraud", "version": "1"}`, // v2 exists already
		`{"kind": "raised", "model": "other", "version": "2", "raised": ["amount"]}`,
		`{"kind": "raised", "model": "fraud", "version": "2", "check_raised": ["amount: missing"]}`, // data quality: no retraining
	} {
		if c := post(a); c != http.StatusAccepted {
			t.Errorf("%s: %d", a, c)
		}
	}
	rt.mu.Lock()
	busy := rt.busy
	rt.mu.Unlock()
	if busy {
		t.Error("a retraining started for an alert that does not call for one")
	}
}

// Every route of the admin listener, the drift report included, needs the
// token (issue 18 row 12: /drift/ did not).
func TestAdminListenerNeedsTheToken(t *testing.T) {
	o, err := parseFlags([]string{"-dir", t.TempDir(), "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-admin-token", "tok"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(o.repoDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	srv, err := startServer(context.Background(), o, newTimeline(io.Discard), log, "http://127.0.0.1:1/hooks/drift", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close(context.Background())
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.adminURL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/drift/", "/v1/models", "/v1/models/fraud", "/anything"} {
		if c := get(path, ""); c != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, c)
		}
		if c := get(path, "wrong"); c != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, c)
		}
	}
	if c := get("/drift/", "tok"); c != http.StatusOK {
		t.Errorf("GET /drift/ with the token: %d, want 200", c)
	}
	if c := get("/v1/models", "tok"); c != http.StatusOK {
		t.Errorf("GET /v1/models with the token: %d, want 200", c)
	}
}
