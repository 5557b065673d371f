package monitoring_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/orttest"
)

// metricRef matches the metric names the assets query: servekit's own and
// the runtime/process ones. Prometheus's synthetic series (up) and label
// names are not metric names of the example and are left out.
var metricRef = regexp.MustCompile(`\b(?:servekit|go|process)_[a-z0-9_]+\b`)

// referenced returns the metric names used in the dashboard's expressions
// and variable queries and in the alert rules, each with where it is used.
func referenced(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(where, expr string) {
		for _, n := range metricRef.FindAllString(expr, -1) {
			if !slices.Contains(refs[n], where) {
				refs[n] = append(refs[n], where)
			}
		}
	}
	for _, e := range dashboardExprs(t) {
		add("dashboard.json", e)
	}
	for _, e := range ruleExprs(t) {
		add("alerts.yml", e)
	}
	if len(refs) == 0 {
		t.Fatal("no metric names found in the dashboard and rules")
	}
	return refs
}

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d
}

func dashboardExprs(t *testing.T) []string {
	d := readDashboard(t)
	var out []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		out = append(out, v.Definition)
	}
	return out
}

// ruleExprs reads the expr fields of alerts.yml. The file is plain enough
// (expr: | blocks or one-line expr:) that a line reader does, which keeps a
// YAML library out of go.mod.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur *strings.Builder
	indent := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		ind := len(line) - len(strings.TrimLeft(line, " "))
		if cur != nil {
			if trimmed == "" || ind > indent {
				cur.WriteString(line + "\n")
				continue
			}
			out = append(out, cur.String())
			cur = nil
		}
		if rest, ok := strings.CutPrefix(trimmed, "expr:"); ok {
			if rest = strings.TrimSpace(rest); rest == "|" || rest == ">" {
				cur, indent = &strings.Builder{}, ind
			} else {
				out = append(out, rest)
			}
		}
	}
	if cur != nil {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml: no expr found")
	}
	return out
}

// TestDashboardShape checks what makes the dashboard importable: a
// DS_PROMETHEUS input that every panel and query uses, and model/version
// variables.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want one prometheus input DS_PROMETHEUS", d.Inputs)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, want := range []string{"DS_PROMETHEUS", "model", "version"} {
		if !slices.Contains(vars, want) {
			t.Errorf("no %q variable (have %v)", want, vars)
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${DS_PROMETHEUS}") {
			t.Errorf("panel %q: datasource %s, want ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(string(tg.Datasource), "${DS_PROMETHEUS}") {
				t.Errorf("panel %q: target datasource %s", p.Title, tg.Datasource)
			}
		}
	}
}

// promtool checks the rules and the scrape config when it is installed
// (scripts/install-deps.sh installs it; scripts/check-monitoring.sh
// requires it).
func TestPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("SERVEKIT_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found (SERVEKIT_REQUIRE_PROMTOOL=1)")
		}
		t.Skip("promtool not found; run scripts/install-deps.sh")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"check", "config", "prometheus.yml"}} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMetricsExported checks that every metric name the dashboard and the
// rules query is exported by a servekit server: servekit serve for the
// request, batching, cache and process metrics, examples/closedloop for
// the rollout, shadow, drift and prediction-logging ones (only a server
// that runs a router with a canary plan, a shadow and a drift monitor has
// them). It fails listing each referenced name that neither exports.
func TestMetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/servekit and examples/closedloop")
	}
	lib := ortLib(t)
	root, _ := filepath.Abs("../..")
	server := serveFamilies(t, build(t, root, "./cmd/servekit"), lib, root)
	loop := closedLoopFamilies(t, build(t, root, "./examples/closedloop"), lib)

	refs := referenced(t)
	var missing []string
	for name, where := range refs {
		if !server.has(name) && !loop.has(name) {
			missing = append(missing, fmt.Sprintf("%s (used in %s)", name, strings.Join(where, ", ")))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d metric names the dashboard and rules query are exported by neither servekit serve nor examples/closedloop:\n  %s",
			len(missing), len(refs), strings.Join(missing, "\n  "))
		t.Logf("servekit serve exports: %v\nclosedloop exports: %v", server.names(), loop.names())
	} else {
		t.Logf("all %d referenced metric names are exported", len(refs))
	}
}

// build compiles the command pkg (./cmd/servekit) into the test's
// temporary directory.
func build(t *testing.T, root, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// serveFamilies starts servekit serve with batching and a cache on a
// free loopback port, sends traffic that makes every series the assets
// query exist (a cache miss and hit, batches, evictions, requests the
// batcher rejects), and returns what /metrics exports.
func serveFamilies(t *testing.T, bin, lib, root string) families {
	p := startProcess(t, bin, "serve", "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0", // one port
		"--ort-lib", lib,
		"--model", "fraud="+filepath.Join(root, "testdata/models/fraud.onnx"),
		"--batch", "--batch-max-rows", "2", "--batch-queue-rows", "2", "--batch-max-delay", "5ms",
		"--cache", "--cache-entries", "4",
		"--warmup", "1") // warm-up is off by default; the dashboard charts its duration
	base := p.await(t, regexp.MustCompile(`^serving .* on (http://\S+) `), 60*time.Second)

	// A miss then a hit; then more distinct requests than the cache holds
	// (it rounds 4 entries up to one per shard), so it evicts.
	infer(t, base, 0)
	for i := range 64 {
		infer(t, base, float32(i))
	}
	// Bursts of distinct requests, so batches form and the 2-row queue
	// overflows (429), and of identical ones, so all but the first wait for
	// its answer (coalesced). Both depend on timing: repeat until both show.
	var wg sync.WaitGroup
	var scrape string
	for burst := range 30 {
		for i := range 24 {
			wg.Go(func() { infer(t, base, float32(1000+burst*24+i)) })
			wg.Go(func() { infer(t, base, float32(-1-burst)) })
		}
		wg.Wait()
		scrape = get(t, base+"/metrics")
		if strings.Contains(scrape, `reason="overloaded"`) && strings.Contains(scrape, "\nservekit_cache_coalesced_total{") {
			break
		}
	}
	return exported(scrape)
}

// closedLoopFamilies runs examples/closedloop's story, shortened, and
// returns every family its /metrics exported at some point: the shadow's
// and the plan's series exist only while a mirror or a plan is active, so
// it scrapes every 200 ms from the server's start to the story's end.
func closedLoopFamilies(t *testing.T, bin, lib string) families {
	p := startProcess(t, bin, "-dir", t.TempDir(), "-ort-lib", lib, "-serve",
		"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-admin-token", "test",
		"-history", "5000", "-nightly-rows", "5000", "-callers", "6", "-rate", "300",
		"-shift-after", "1500", "-window", "300", "-label-delay", "300ms", "-log-rotate", "300ms",
		"-poll", "100ms", "-train-rows", "600", "-shadow-pairs", "300", "-min-requests", "10",
		"-min-labelled", "150", "-hold", "1s", "-interval", "200ms", "-tail", "500ms", "-max-p99", "2s")
	base := p.await(t, regexp.MustCompile(`serving v1 on (http://\S+)/v2/`), 60*time.Second)
	all := families{}
	end := time.After(3 * time.Minute)
	for done := false; !done; {
		select {
		case line, ok := <-p.lines:
			switch {
			case !ok:
				t.Fatal("closedloop exited before the end of its story")
			case strings.HasPrefix(line, "serving until interrupted"):
				done = true
			}
			continue
		case <-time.After(200 * time.Millisecond):
		case <-end:
			t.Fatal("closedloop's story did not end within 3 minutes")
		}
		maps.Copy(all, exported(get(t, base+"/metrics")))
	}
	maps.Copy(all, exported(get(t, base+"/metrics")))
	return all
}

// families maps each exported metric family to its type.
type families map[string]string

// exported reads the # TYPE lines of a text-format scrape.
func exported(scrape string) families {
	f := families{}
	for line := range strings.Lines(scrape) {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, typ, ok := strings.Cut(strings.TrimSpace(rest), " "); ok {
				f[name] = typ
			}
		}
	}
	return f
}

// has reports whether a query's name is exported: a family, or the
// _bucket/_sum/_count series of a histogram family.
func (f families) has(name string) bool {
	if _, ok := f[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && f[base] == "histogram" {
			return true
		}
	}
	return false
}

func (f families) names() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ortLib finds ONNX Runtime, or skips unless SERVEKIT_REQUIRE_ORT=1.
func ortLib(t *testing.T) string {
	t.Helper()
	return orttest.Library(t)
}

// process is a running example: its stdout lines, until it exits.
type process struct {
	lines <-chan string
}

// startProcess runs the binary and stops it with SIGTERM (then SIGKILL)
// when the test ends, failing the test if it then exits with an error.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(bin)
	lines := make(chan string, 1024)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more: the output is not needed
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s exited with %v\n%s", name, err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
	})
	return &process{lines: lines}
}

// await reads lines until one matches re, and returns its first group.
func (p *process) await(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("exited before printing a line matching %s", re)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatalf("no line matching %s within %v", re, timeout)
		}
	}
}

// infer sends one V2 request for the fraud model whose features start at v.
// Any status is fine (429 is wanted); a transport error is not.
func infer(t *testing.T, base string, v float32) {
	body := fmt.Sprintf(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[%g,0.5,-1.2,0.3,2.1,-0.7,1.5,0.1]}]}`, v)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v2/models/fraud/infer", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("infer: %v", err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
