package monitoring_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// TestMetricsExported builds and starts examples/realtime with batching and
// a cache on a free loopback port, sends traffic that makes every series the
// assets query exist (a cache miss and hit, batches, evictions, requests the
// batcher rejects), scrapes /metrics and fails listing each referenced name
// it does not export.
func TestMetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs examples/realtime")
	}
	lib := ortLib(t)
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), "realtime")
	build := exec.Command("go", "build", "-o", bin, "./examples/realtime")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/realtime: %v\n%s", err, out)
	}

	base := startServer(t, bin, lib, root,
		"-batch", "-batch-max-rows", "2", "-batch-queue-rows", "2", "-batch-max-delay", "5ms",
		"-cache", "-cache-entries", "4",
		"-warmup", "1") // warm-up is off by default; the dashboard charts its duration

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

	families := exported(scrape)
	refs := referenced(t)
	var missing []string
	for name, where := range refs {
		if !families.has(name) {
			missing = append(missing, fmt.Sprintf("%s (used in %s)", name, strings.Join(where, ", ")))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d metric names the dashboard and rules query are not exported by examples/realtime:\n  %s",
			len(missing), len(refs), strings.Join(missing, "\n  "))
		t.Logf("exported families: %v", families.names())
	} else {
		t.Logf("all %d referenced metric names are exported", len(refs))
	}
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

// startServer runs the binary on 127.0.0.1:0, reads the address it prints,
// and stops it with SIGTERM (then SIGKILL) when the test ends.
func startServer(t *testing.T, bin, lib, root string, args ...string) string {
	t.Helper()
	args = append([]string{"-addr", "127.0.0.1:0", "-ort-lib", lib,
		"-model", "fraud=" + filepath.Join(root, "testdata/models/fraud.onnx")}, args...)
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
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`^serving .* on (http://\S+) `)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("realtime exited with %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("realtime did not stop within 30s of SIGTERM")
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("realtime exited before serving: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("realtime did not start within 60s")
	}
	return ""
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
