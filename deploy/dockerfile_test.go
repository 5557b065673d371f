package deploy_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// TestDockerfile parses cmd/servekit/Dockerfile with buildkit's own
// parser and instruction decoder (what docker build runs first), then checks
// what the image promises: a build stage that fetches ONNX Runtime with the
// project's script and builds the server, and a final stage with the demo
// model repository, a non-root user, the port, a HEALTHCHECK on readiness and an
// ENTRYPOINT.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../cmd/servekit/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("instructions: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	var runs []string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			runs = append(runs, strings.Join(r.CmdLine, " "))
		}
	}
	if !slices.ContainsFunc(runs, func(s string) bool { return strings.Contains(s, "scripts/install-onnxruntime.sh") }) {
		t.Errorf("build stage does not fetch ONNX Runtime with scripts/install-onnxruntime.sh: %q", runs)
	}
	if !slices.ContainsFunc(runs, func(s string) bool {
		return strings.Contains(s, "go build") && strings.Contains(s, "./cmd/servekit")
	}) {
		t.Errorf("build stage does not build ./cmd/servekit: %q", runs)
	}
	var user, healthcheck, entrypoint string
	var exposed, fromBuild, model bool
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			healthcheck = strings.Join(c.Health.Test, " ")
		case *instructions.EntrypointCommand:
			entrypoint = strings.Join(c.CmdLine, " ")
		case *instructions.ExposeCommand:
			exposed = slices.Contains(c.Ports, "8000")
		case *instructions.CopyCommand:
			if c.From == build.Name {
				fromBuild = true
			}
			if slices.ContainsFunc(c.SourcePaths, func(p string) bool { return strings.HasSuffix(p, ".onnx") }) {
				model = true
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage runs as %q, want a non-root USER", user)
	}
	if !strings.Contains(healthcheck, "/v2/health/ready") {
		t.Errorf("HEALTHCHECK %q, want a check of /v2/health/ready", healthcheck)
	}
	if !strings.Contains(entrypoint, "/servekit") {
		t.Errorf("ENTRYPOINT %q, want the server", entrypoint)
	}
	if !exposed || !fromBuild || !model {
		t.Errorf("final stage: EXPOSE 8000 %v, COPY --from=%s %v, demo model copied %v", exposed, build.Name, fromBuild, model)
	}
}
