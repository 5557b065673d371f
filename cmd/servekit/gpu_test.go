package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

func gpuHere() bool {
	out, err := exec.Command("nvidia-smi", "-L").Output()
	return err == nil && strings.Contains(string(out), "GPU ")
}

// TestCUDAFlags: -cuda without a usable GPU fails at start and says why;
// with -cpu-fallback the server serves on the CPU and its model metadata
// says so. On a GPU machine the model runs on the device instead.
func TestCUDAFlags(t *testing.T) {
	lib := ortLib(t)
	want := "cpu"
	if gpuHere() {
		want = "cuda:0"
	} else {
		err := serveArgs(context.Background(), []string{"--ort-lib", lib, "--model", "fraud=../../testdata/models/fraud.onnx", "--cuda", "0"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "CUDA device 0 requested") {
			t.Errorf("--cuda 0 without a GPU: %v", err)
		}
	}
	base, curl, stop := start(t, "--cuda", "0", "--cpu-fallback", "--cuda-conv-algo", "HEURISTIC", "--cuda-mem-limit", "1073741824")
	defer stop()
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
	resp, err := http.Get(base + "/v2/models/fraud")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct{ Parameters struct{ Device string } }
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || md.Parameters.Device != want {
		t.Errorf("model metadata device %q (%v), want %q", md.Parameters.Device, err, want)
	}
}

func TestCUDAFlagMistake(t *testing.T) {
	err := serveArgs(context.Background(), []string{"--ort-lib", ortLib(t), "--model", "fraud=../../testdata/models/fraud.onnx",
		"--cuda", "0", "--cpu-fallback", "--cuda-conv-algo", "fastest"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"fastest"`) {
		t.Errorf("bad -cuda-conv-algo: %v", err)
	}
}
