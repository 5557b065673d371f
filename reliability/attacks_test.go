package reliability_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/loadtest"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
)

// The attack table of issue 18, rerun the way it was measured: each row's
// traffic goes to a fresh servekit serve --batch --cache replica, repeated
// on as many fresh replicas, while a probe sends honest requests beside it.
// A row passes when every answer is a client error (4xx, or a gRPC client
// code), the replica's peak RSS (VmHWM) stays within its idle RSS + 192 MiB,
// what it allocated (runtime TotalAlloc, from its pprof listener) within
// serving.DecodeBudget of each request sent plus what the probes cost, the
// traffic is answered within the row's time bound, and every probe is
// answered 200.
//
//	make attacks                                  # every row, 3 replicas each
//	make attacks ARGS='-attacks.rows ^6'          # the rows matching a regexp
//	make attacks ARGS='-attacks.bin /tmp/old'     # an older build's numbers
//
// The rows live beside the code they exercise (attack_decode_test.go has
// rows 1-6); a file adds rows with `var _ = addAttacks(attack{...})`.

var (
	attacksOn     = flag.Bool("attacks", false, "run issue 18's attack table (make attacks)")
	attackRepeat  = flag.Int("attacks.repeat", 3, "fresh replicas per row")
	attackBin     = flag.String("attacks.bin", "", "a servekit binary to attack instead of this tree's (one built at an older commit, for before/after; it must have servekit serve)")
	attackRowsRE  = flag.String("attacks.rows", "", "regexp of the rows to run (their row ids, e.g. ^1b$|^6)")
	attackCeiling = flag.Int64("attacks.ceiling", 1536, "MiB of RSS at which a replica is killed (the shipped pod's limit is 1024): this machine is shared")
)

// An attack is one row of the table: what a client sends to a fresh
// replica started with the common flags plus args.
type attack struct {
	row  string // as issue 18 numbers it: "1", "1b", ... "12"
	what string
	args []string
	// within is how long the traffic may take: a second unless the row
	// waits on a server timeout by design.
	within time.Duration
	// setup, if set, prepares the traffic (builds large bodies) before the
	// replica starts and the clock runs.
	setup func()
	// send sends the traffic to srv and returns what each request sent and
	// got back.
	send func(t *testing.T, srv *loadtest.Server) []sent
}

// sent is one request of an attack: its size (the body, or for gRPC the
// message as the server inflates it, at most its limit) and the answer's
// status: "400", "413", "grpc 8" (a gRPC status code), or what went wrong.
type sent struct {
	bytes  int
	status string
}

var attackTable []attack

// addAttacks registers rows; files add theirs with var _ = addAttacks(...).
func addAttacks(rows ...attack) bool {
	attackTable = append(attackTable, rows...)
	return true
}

// attackRun is one row on one replica.
type attackRun struct {
	statuses        map[string]int
	allocated       int64 // by the server while the row ran
	budget          int64 // serving.DecodeBudget of every request, probes included
	took            time.Duration
	idle, peak      int64 // bytes
	killed          bool  // past -attacks.ceiling
	probes, failed  int
	slowestProbe    time.Duration
	failedProbeNote string
}

func TestAttacks(t *testing.T) {
	if !*attacksOn {
		t.Skip("the attack table runs with -attacks (make attacks)")
	}
	var re *regexp.Regexp
	if *attackRowsRE != "" {
		re = regexp.MustCompile(*attackRowsRE)
	}
	bin := *attackBin
	if bin == "" {
		bin = loadtest.Build(t, servekitPkg)
	}
	lib := orttest.Library(t)
	var table strings.Builder
	fmt.Fprintf(&table, "| row | what | replica | answers | time | allocated (budget) | idle RSS | peak RSS | peak - idle | probes ok | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	failed := 0
	for _, a := range attackTable {
		if re != nil && !re.MatchString(a.row) {
			continue
		}
		for rep := 1; rep <= *attackRepeat; rep++ {
			r := runAttack(t, bin, lib, a)
			verdict := r.verdict(a)
			if verdict != "ok" {
				failed++
			}
			fmt.Fprintf(&table, "| %s | %s | %d | %s | %s | %s (%s) | %s | %s | %s | %d/%d | %s |\n", a.row, a.what, rep, r.answers(),
				r.took.Round(time.Millisecond), mibText(r.allocated), mibText(r.budget), mibText(r.idle), peakText(r), mibText(r.peak-r.idle),
				r.probes-r.failed, r.probes, verdict)
		}
	}
	t.Logf("binary %s\n%s", bin, table.String())
	if *outDir != "" {
		if err := os.WriteFile(output(t, "attacks.md"), []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d row runs failed (table above)", failed)
	}
}

func runAttack(t *testing.T, bin, lib string, a attack) attackRun {
	var r attackRun
	if a.setup != nil {
		a.setup()
	}
	t.Run(a.row+" "+a.what, func(t *testing.T) {
		args := []string{"--ort-lib", lib, "--model", "fraud=" + fraudModel(t), "--batch", "--cache", "--debug-addr", "127.0.0.1:0"}
		if hasFlag(t, bin, "admin-token") { // pprof is behind it since the admin hardening
			args = append(args, "--admin-token", attackToken)
		}
		args = append(args, a.args...)
		srv := loadtest.Start(t, bin, args...)
		defer srv.Kill()
		client := &http.Client{Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		for range 5 { // warm: the first requests load lazily built state
			if status, _ := post(client, srv.Base+"/v2/models/fraud/infer", []byte(fraudBody)); status != http.StatusOK {
				t.Fatalf("honest request before the attack: %d", status)
			}
		}
		r.idle = procStatus(t, srv.PID(), "VmRSS")
		allocBefore := memStat(t, srv, "TotalAlloc")

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var killed atomic.Bool
		wg.Go(func() { // the watchdog: this machine is shared
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if rss := procStatus(t, srv.PID(), "VmRSS"); rss > *attackCeiling<<20 {
					r.peak = procStatus(t, srv.PID(), "VmHWM")
					killed.Store(true)
					srv.Kill()
					return
				}
			}
		})
		var probeMu sync.Mutex
		wg.Go(func() { // honest traffic beside the attack
			pc := &http.Client{Timeout: 5 * time.Second}
			defer pc.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				case <-time.After(25 * time.Millisecond):
				}
				start := time.Now()
				status, body := post(pc, srv.Base+"/v2/models/fraud/infer", []byte(fraudBody))
				d := time.Since(start)
				probeMu.Lock()
				r.probes++
				r.slowestProbe = max(r.slowestProbe, d)
				if status != http.StatusOK && !killed.Load() {
					r.failed++
					r.failedProbeNote = fmt.Sprintf("%d %.80s", status, body)
				}
				probeMu.Unlock()
			}
		})
		start := time.Now()
		answers := a.send(t, srv)
		r.took = time.Since(start)
		probeMu.Lock()
		probed := r.probes
		probeMu.Unlock()
		// One probe sent after the traffic (probes go one at a time, so
		// the second to finish from here started after it).
		poll.Until(t, "a probe after the attack", func() bool {
			probeMu.Lock()
			defer probeMu.Unlock()
			return r.probes >= probed+2
		})
		close(stop)
		wg.Wait()
		r.killed = killed.Load()
		if !r.killed {
			r.peak = procStatus(t, srv.PID(), "VmHWM")
			r.allocated = memStat(t, srv, "TotalAlloc") - allocBefore
		}
		r.statuses = map[string]int{}
		r.budget = int64(r.probes) * probeBudget
		for _, s := range answers {
			r.statuses[s.status]++
			r.budget += serving.DecodeBudget(int64(s.bytes))
		}
		if r.failed > 0 {
			t.Logf("a probe failed: %s", r.failedProbeNote)
		}
	})
	return r
}

// clientError reports whether an answer is the client's fault, as a hostile
// request's should be: 4xx, or gRPC InvalidArgument (3), ResourceExhausted
// (8), FailedPrecondition (9), OutOfRange (11).
func clientError(s string) bool {
	if code, ok := strings.CutPrefix(s, "grpc "); ok {
		return code == "3" || code == "8" || code == "9" || code == "11"
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 400 && n < 500
}

func (r attackRun) verdict(a attack) string {
	var why []string
	for s := range r.statuses {
		if !clientError(s) {
			why = append(why, "answer "+s)
		}
	}
	switch {
	case r.killed:
		why = append(why, fmt.Sprintf("killed past %d MiB", *attackCeiling))
	case r.peak-r.idle > 192<<20:
		why = append(why, "peak > idle + 192 MiB")
	}
	if r.allocated > r.budget {
		why = append(why, "allocated over budget")
	}
	within := a.within
	if within == 0 {
		within = time.Second
	}
	if r.took > within {
		why = append(why, "slower than "+within.String())
	}
	if r.failed > 0 {
		why = append(why, fmt.Sprintf("%d probes failed", r.failed))
	}
	if len(why) == 0 {
		return "ok"
	}
	slices.Sort(why)
	return strings.Join(why, "; ")
}

func (r attackRun) answers() string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(r.statuses)) {
		parts = append(parts, fmt.Sprintf("%d× %s", r.statuses[s], s))
	}
	return strings.Join(parts, ", ")
}

func peakText(r attackRun) string {
	if r.killed {
		return "> " + mibText(*attackCeiling<<20) + " (killed)"
	}
	return mibText(r.peak)
}

func mibText(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%.0f MiB", mib(b))
}

const attackToken = "attacks"

// hasFlag reports whether servekit serve at bin has --name (builds differ).
func hasFlag(t *testing.T, bin, name string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("\n  --"+name+"\n")) || bytes.Contains(out, []byte("\n  --"+name+" "))
}

// probeBudget is what one honest probe may cost the server, all of its
// answer's work included: measured at about 40 KiB, plus room.
const probeBudget = 128 << 10

// memStat reads a runtime.MemStats field from the server's heap profile.
func memStat(t *testing.T, srv *loadtest.Server, field string) int64 {
	if srv.Debug == "" {
		t.Fatal("the server has no pprof listener (-debug-addr)")
	}
	status, b := post(nil, srv.Debug+"/debug/pprof/heap?debug=1", nil, "Authorization", "Bearer "+attackToken)
	if status != http.StatusOK {
		t.Fatalf("heap profile: %d %s", status, b)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "# "+field+" = "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the heap profile", field)
	return 0
}

// procStatus reads a kB field of /proc/PID/status (VmRSS, VmHWM) in bytes;
// 0 once the process is gone.
func procStatus(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb << 10
		}
	}
	return 0
}

// post sends body (nil: a GET) and returns the status (0 when no answer
// came) and body; c nil is http.DefaultClient.
func post(c *http.Client, url string, body []byte, hdr ...string) (int, []byte) {
	if c == nil {
		c = http.DefaultClient
	}
	method := http.MethodPost
	if body == nil {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// concurrently runs f(i) for i in [0, n) at once and gathers the answers.
func concurrently(n int, f func(i int) sent) []sent {
	out := make([]sent, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = f(i) })
	}
	wg.Wait()
	return out
}

// statusText is an HTTP status as a table entry; 0 (no answer) says why.
func statusText(status int, body []byte) string {
	if status == 0 {
		return "no answer: " + string(body)
	}
	return strconv.Itoa(status)
}
