package grpcapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeClient returns the directory of the Node client with its npm packages
// installed (npm ci against the committed package-lock.json). Without node
// or npm, or when npm cannot reach its registry, the test is skipped, or
// fails where SERVEKIT_REQUIRE_NODE=1 (CI).
func nodeClient(t *testing.T) string {
	t.Helper()
	missing := func(why string, args ...any) {
		t.Helper()
		if os.Getenv("SERVEKIT_REQUIRE_NODE") == "1" {
			t.Fatalf("Node client required (SERVEKIT_REQUIRE_NODE=1): "+why, args...)
		}
		t.Skipf("Node client not available: "+why, args...)
	}
	dir, err := filepath.Abs("testdata/node-client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("no node on PATH")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js", "package.json")); err == nil {
		return dir
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing("no npm on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		missing("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}

// TestNodeClientMatchesREST: @grpc/grpc-js, with typed and raw inputs, gets
// the demo model's answers bit for bit as REST gives them, and bad input
// gets the same class of error.
func TestNodeClientMatchesREST(t *testing.T) {
	dir := nodeClient(t)
	addr, _ := demo(t)
	status, want := restInfer(t, addr, "fraud", "", "features", "FP32", []int64{3, 8}, fraudRows)
	if status != 200 {
		t.Fatalf("REST: %d", status)
	}
	type badJSON struct {
		Name    string  `json:"name"`
		Model   string  `json:"model"`
		Version string  `json:"version"`
		Input   string  `json:"input"`
		Dtype   string  `json:"dtype"`
		Shape   []int64 `json:"shape"`
		Data    any     `json:"data"`
	}
	plan := struct {
		Rows [][]float32 `json:"rows"`
		Bad  []badJSON   `json:"bad"`
	}{Rows: fraudRows}
	for _, b := range badCases {
		plan.Bad = append(plan.Bad, badJSON{b.name, b.model, b.version, b.input, b.dtype, b.shape, b.data})
	}
	in, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proto, _ := filepath.Abs("proto/grpc_predict_v2.proto")
	cmd := exec.CommandContext(ctx, "node", "client.js", addr, proto)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, stderr.String())
	}
	type answer struct {
		Code, Name, Datatype, Model, Version, ID, Hex, Message string
		Shape                                                  []int64
	}
	var res struct {
		Live, Ready       bool
		ModelReadyUnknown string
		Metadata          struct {
			Platform string
			Inputs   []struct {
				Name, Datatype string
				Shape          []int64
			}
		}
		Typed, Raw answer
		Bad        map[string]string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node client printed %s: %v", out, err)
	}
	if !res.Live || !res.Ready || res.ModelReadyUnknown != "not_found" {
		t.Errorf("live %v ready %v unknown model ready %q", res.Live, res.Ready, res.ModelReadyUnknown)
	}
	if md := res.Metadata; md.Platform != "onnxruntime_onnx" || len(md.Inputs) != 1 || md.Inputs[0].Name != "features" || !slicesEqual(md.Inputs[0].Shape, []int64{-1, 8}) {
		t.Errorf("metadata %+v", md)
	}
	for name, a := range map[string]answer{"typed": res.Typed, "raw": res.Raw} {
		if a.Code != "ok" {
			t.Errorf("%s: %s %s", name, a.Code, a.Message)
			continue
		}
		if a.Hex != hexBits(want) {
			t.Errorf("%s: node got bits %s, REST %s", name, a.Hex, hexBits(want))
		}
		if a.Name != "score" || a.Datatype != "FP32" || !slicesEqual(a.Shape, []int64{3, 1}) || a.Model != "fraud" || a.Version != "1" || a.ID != name+"-1" {
			t.Errorf("%s: answer %+v", name, a)
		}
	}
	for _, b := range badCases {
		st, _ := restInfer(t, addr, b.model, b.version, b.input, b.dtype, b.shape, b.data)
		if got := res.Bad[b.name]; st != b.wantStatus || got != codeClass(st) {
			t.Errorf("%s: REST %d, node %q; want %d and %s", b.name, st, got, b.wantStatus, codeClass(b.wantStatus))
		}
	}
}
