package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every flag comes from $SERVEKIT_<FLAG> too; the command line wins; an
// empty variable is unset; a list variable is comma-separated.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("SERVEKIT_MODEL_REPOSITORY", "/models")
	t.Setenv("SERVEKIT_HTTP_PORT", "9000")
	t.Setenv("SERVEKIT_GRPC_PORT", "") // Kubernetes' unset optional variable
	t.Setenv("SERVEKIT_MODEL_CONTROL_MODE", "explicit")
	t.Setenv("SERVEKIT_LOAD_MODEL", "fraud, vad")
	t.Setenv("SERVEKIT_REPOSITORY_POLL_SECS", "0.5")
	t.Setenv("SERVEKIT_BATCH", "true")
	t.Setenv("SERVEKIT_EXIT_TIMEOUT_SECS", "7")
	t.Setenv("SERVEKIT_LOG_FORMAT", "json")
	o, err := parseServe([]string{"--http-port", "9100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.repo != "/models" || o.httpPort != 9100 || o.grpcPort != 8001 || o.controlMode != controlExplicit ||
		!slices.Equal(o.loadModels, []string{"fraud", "vad"}) || o.pollInterval() != 500*time.Millisecond || !o.batch ||
		secs(o.exitSecs) != 7*time.Second || o.logFormat != "json" {
		t.Errorf("parsed %+v", o)
	}
}

func TestFlagMistakes(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, nil, "nothing to serve"},
		{nil, []string{"models/"}, `unexpected argument "models/"`},
		{nil, []string{"--model-repository", "m", "--model-control-mode", "auto"}, `--model-control-mode "auto"`},
		{nil, []string{"--model-repository", "m", "--load-model", "fraud"}, "--load-model needs --model-control-mode explicit"},
		{nil, []string{"--model", "a=b.onnx", "--model-control-mode", "poll"}, "needs --model-repository"},
		{nil, []string{"--model-repository", "m", "--repository-poll-secs", "0"}, "--repository-poll-secs 0"},
		{nil, []string{"--model-repository", "m", "--exit-timeout-secs", "-1"}, "--exit-timeout-secs -1"},
		{nil, []string{"--model-repository", "m", "--http-port", "70000"}, "--http-port 70000: not a port"},
		{nil, []string{"--model-repository", "m", "--log-format", "xml"}, `--log-format "xml"`},
		{nil, []string{"--model-repository", "m", "--cache-config", "redis,host=x"}, "only Triton's local cache"},
		{nil, []string{"--model-repository", "m", "--cache-config", "local,size=lots"}, "want local,size=BYTES"},
		{nil, []string{"--model-repository", "m", "--bogus"}, "-bogus"},
		{[]string{"SERVEKIT_HTTP_PORT", "eighty"}, []string{"--model-repository", "m"}, `$SERVEKIT_HTTP_PORT="eighty"`},
		{[]string{"SERVEKIT_ADDR", ":8080"}, []string{"--model-repository", "m"}, "set $SERVEKIT_HTTP_ADDRESS and SERVEKIT_HTTP_PORT instead"},
		{[]string{"PORT", "x"}, []string{"--model-repository", "m"}, `$PORT="x": not a port`},
	} {
		for i := 0; i < len(tc.env); i += 2 {
			t.Setenv(tc.env[i], tc.env[i+1])
		}
		err := run(context.Background(), append([]string{"serve"}, tc.args...), nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%v %v: %v (exit status %d), want a usage error (2) saying %q", tc.env, tc.args, err, exitCode(err), tc.want)
		}
		for i := 0; i < len(tc.env); i += 2 {
			t.Setenv(tc.env[i], "")
		}
	}
}

// Cloud Run's $PORT and Vertex AI's $AIP_HTTP_PORT give --http-port its
// default; the flag and $SERVEKIT_HTTP_PORT still win.
func TestPlatformPort(t *testing.T) {
	t.Setenv("PORT", "8080")
	o, err := parseServe([]string{"--model-repository", "m"}, io.Discard)
	if err != nil || o.httpPort != 8080 {
		t.Fatalf("$PORT=8080: --http-port %d, %v", o.httpPort, err)
	}
	t.Setenv("SERVEKIT_HTTP_PORT", "9000")
	if o, err := parseServe([]string{"--model-repository", "m"}, io.Discard); err != nil || o.httpPort != 9000 {
		t.Errorf("$PORT=8080 $SERVEKIT_HTTP_PORT=9000: --http-port %d, %v", o.httpPort, err)
	}
}

func TestCommands(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"serve", "--help"}, nil, &out, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve --help: %v", err)
	}
	for _, want := range []string{"--model-repository DIR", "[$SERVEKIT_MODEL_REPOSITORY]", "--grpc-port", "Response cache:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	for _, args := range [][]string{nil, {"server"}, {"infer"}, {"infer", "--model-name", "m"}, {"infer", "--model-name", "m", "--data", "{}", "--url", "ftp://x"}} {
		if err := run(context.Background(), args, nil, io.Discard, io.Discard); exitCode(err) != 2 {
			t.Errorf("servekit %v: %v, want a usage error", args, err)
		}
	}
}

// --log-format json: every line servekit serve prints is one JSON object,
// the startup facts too; a model that fails to load stops the start
// (--exit-on-error, Triton's default) and says which.
func TestJSONLogsAndExitOnError(t *testing.T) {
	lib := ortLib(t)
	dir := t.TempDir()
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	ctx, cancel := context.WithCancel(context.Background())
	lines := lineWriter{make(chan string, 256), &output{}}
	done := make(chan error, 1)
	go func() {
		done <- serveArgs(ctx, []string{"--ort-lib", lib, "--model-repository", dir, "--log-format", "json", "--debug-addr", "127.0.0.1:0"}, lines)
	}()
	for started := false; !started; {
		select {
		case l := <-lines.lines:
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Errorf("not JSON: %q", l)
			}
			started = r["msg"] == "serving"
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, l := range lines.out.all() {
		if !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %q", l)
		}
	}

	put(t, filepath.Join(dir, "broken", "1", "model.onnx"), []byte("not a model"))
	err := serveArgs(context.Background(), []string{"--ort-lib", lib, "--model-repository", dir}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "failed to load broken/1") {
		t.Errorf("a version that fails to load at start: %v, want the server to stop, naming it", err)
	}
}
