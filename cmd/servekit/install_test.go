package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// features is the demo request's row (the README's curl line).
var features = []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4}

// installed is servekit as a user gets it: go install into an empty
// GOBIN, once per test binary.
func installed(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() {
		dir, err := os.MkdirTemp("", "servekit-gobin-")
		if err != nil {
			installErr = err
			return
		}
		cmd := exec.Command("go", "install", ".")
		cmd.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			installErr = fmt.Errorf("go install ./cmd/servekit: %v\n%s", err, out)
			return
		}
		installBin = filepath.Join(dir, "servekit")
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installBin
}

var (
	installOnce sync.Once
	installBin  string
	installErr  error
)

// TestInstalledServe is the "done when": go install, then
// servekit serve --model-repository testdata/repository serves REST,
// gRPC on its own port and /metrics on its own, configured by
// environment variables as a container is (the command line winning
// where both are set), logging JSON; servekit infer asks it from a .npy
// file and a CSV file; SIGTERM stops it cleanly.
func TestInstalledServe(t *testing.T) {
	lib := ortLib(t)
	if testing.Short() {
		t.Skip("builds and runs the servekit binary")
	}
	bin := installed(t)
	grpcPort, metricsPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve", "--metrics-port", strconv.Itoa(metricsPort))
	cmd.Env = append(os.Environ(),
		"SERVEKIT_MODEL_REPOSITORY=../../testdata/repository",
		"SERVEKIT_HTTP_ADDRESS=127.0.0.1", "SERVEKIT_HTTP_PORT=0",
		"SERVEKIT_GRPC_ADDRESS=127.0.0.1", "SERVEKIT_GRPC_PORT="+strconv.Itoa(grpcPort),
		"SERVEKIT_METRICS_ADDRESS=127.0.0.1", "SERVEKIT_METRICS_PORT=1", // the flag wins: port 1 would fail
		"SERVEKIT_LOG_FORMAT=json",
		"SERVEKIT_ORT_LIB="+lib,
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Every line is one JSON object; the "serving" record has the ports.
	records := make(chan map[string]any, 256)
	go func() {
		defer close(records)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r map[string]any
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = map[string]any{"notjson": sc.Text()}
			}
			records <- r
		}
	}()
	var serving map[string]any
	deadline := time.After(2 * time.Minute)
	for serving == nil {
		select {
		case r, ok := <-records:
			if !ok {
				t.Fatal("servekit serve exited before serving")
			}
			if s, bad := r["notjson"]; bad {
				t.Errorf("--log-format json printed a line that is not JSON: %s", s)
			}
			if r["msg"] == "serving" {
				serving = r
			}
		case <-deadline:
			t.Fatal("servekit serve did not start in 2 minutes")
		}
	}
	base := "http://" + serving["http"].(string)
	if got, want := serving["grpc"], fmt.Sprintf("127.0.0.1:%d", grpcPort); got != want {
		t.Errorf("gRPC on %v, want %s ($SERVEKIT_GRPC_PORT)", got, want)
	}
	if got, want := serving["metrics"], fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort); got != want {
		t.Errorf("%v, want %s (--metrics-port wins over $SERVEKIT_METRICS_PORT)", got, want)
	}

	// REST, the reference answer.
	body := fmt.Sprintf(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":%s}]}`, jsonOf(t, features))
	want := restScore(t, base, body)

	// servekit infer, from a JSON body, a .npy and a CSV file.
	dir := t.TempDir()
	npy := filepath.Join(dir, "x.npy")
	if err := os.WriteFile(npy, npyFile("<f4", "(1, 8)", features), 0o644); err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(dir, "x.csv")
	if err := os.WriteFile(csvFile, []byte("a,b,c,d,e,f,g,h\n0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--data", body},
		{"--input", "features=" + npy},
		{"--input", csvFile}, // the name from the model's metadata
	} {
		cmd := exec.Command(bin, append([]string{"infer", "--url", base, "--model-name", "fraud"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("servekit infer %v: %v\n%s", args, err, stderr.String())
			continue
		}
		if got := score(t, stdout.Bytes()); got != want {
			t.Errorf("servekit infer %v: score %v, REST %v", args, got, want)
		}
	}
	// A model that is not there: exit status 1, the server's error on stderr.
	miss := exec.Command(bin, "infer", "--url", base, "--model-name", "nope", "--data", body)
	var stderr bytes.Buffer
	miss.Stderr = &stderr
	if err := miss.Run(); err == nil || miss.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "404") {
		t.Errorf("servekit infer of an unknown model: %v, stderr %q; want exit status 1 and the 404", err, stderr.String())
	}

	// gRPC on --grpc-port: the same answer.
	cc, err := grpc.NewClient(serving["grpc"].(string), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "features", Datatype: "FP32", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: features},
	}}}
	var resp pb.ModelInferResponse
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, req, &resp); err != nil {
		t.Fatalf("gRPC on --grpc-port: %v", err)
	}
	got, err := grpcapi.DecodeResponse(&resp)
	if err != nil || len(got.Outputs) != 1 {
		t.Fatalf("gRPC answer %v: %v", &resp, err)
	}
	if s, _ := got.Outputs[0].Float64At(0); float32(s) != want {
		t.Errorf("gRPC score %v, REST %v", s, want)
	}

	// /metrics on --metrics-port counts the requests; not on the HTTP port.
	m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if !strings.Contains(m, "servekit_requests_total") {
		t.Errorf("/metrics on --metrics-port has no servekit_requests_total:\n%.500s", m)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range records { // the rest of the log, until the process closes it
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("servekit serve after SIGTERM: %v", err)
	}
}

// TestInstalledVersion: the module, Go and ONNX Runtime versions.
func TestInstalledVersion(t *testing.T) {
	lib := ortLib(t)
	if testing.Short() {
		t.Skip("builds the servekit binary")
	}
	out, err := exec.Command(installed(t), "version", "--ort-lib", lib).CombinedOutput()
	if err != nil {
		t.Fatalf("servekit version: %v\n%s", err, out)
	}
	for _, want := range []string{"servekit github.com/servekit/servekit ", "go " + runtime.Version(), "onnxruntime 1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("servekit version printed\n%s\nwithout %q", out, want)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func restScore(t *testing.T, base, body string) float32 {
	t.Helper()
	resp, err := http.Post(base+"/v2/models/fraud/infer", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("REST: %d %s", resp.StatusCode, b)
	}
	return score(t, b)
}

// score is the one output of a V2 JSON answer.
func score(t *testing.T, b []byte) float32 {
	t.Helper()
	var r struct{ Outputs []struct{ Data []float32 } }
	if err := json.Unmarshal(b, &r); err != nil || len(r.Outputs) != 1 || len(r.Outputs[0].Data) != 1 {
		t.Fatalf("answer %s: %v", b, err)
	}
	return r.Outputs[0].Data[0]
}

// npyFile writes float32s as numpy.save does (format 1.0, header padded
// to a multiple of 64 bytes, ending in a newline).
func npyFile(descr, shape string, v []float32) []byte {
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	for _, f := range v {
		binary.Write(&b, binary.LittleEndian, math.Float32bits(f))
	}
	return b.Bytes()
}
