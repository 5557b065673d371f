package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The statistics extension and the OpenTelemetry metrics tell the same
// story about the same traffic: concurrent distinct requests (batched),
// then repeats (answered by the cache), through -batch -cache. Counts must
// be equal, and times equal to the nanosecond rounding of the metrics'
// float seconds, since both are recorded from the same measurements:
//
//	success.count            = servekit.requests{code=ok}
//	cache_hit.count          = servekit.cache.hits + servekit.cache.coalesced
//	cache_miss.count         = servekit.cache.misses
//	execution_count          = servekit.model.inference.duration count (ok)
//	Σ batch_stats rows × runs = inference_count = servekit.batch.size sum
//	queue.ns                 = servekit.batch.queue.duration + servekit.limit.queue.duration
//	Σ batch_stats compute ns = servekit.model.inference.duration sum (ok)
func TestStatisticsAgreeWithMetrics(t *testing.T) {
	base, _, stop := start(t, "--batch", "--cache", "--batch-max-delay", "2ms")
	defer stop()
	const clients, each = 8, 10
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				postRow(t, base, float32(c*each+i))
			}
		})
	}
	wg.Wait()
	for i := range 15 { // repeats: cache hits
		postRow(t, base, float32(i%clients))
	}

	resp, b := call(t, http.MethodGet, base+"/v2/models/fraud/stats", nil, nil)
	ok200(t, "statistics", resp, b)
	var st struct {
		ModelStats []struct {
			Version        string `json:"version"`
			InferenceCount uint64 `json:"inference_count"`
			ExecutionCount uint64 `json:"execution_count"`
			InferenceStats map[string]struct {
				Count uint64 `json:"count"`
				NS    uint64 `json:"ns"`
			} `json:"inference_stats"`
			BatchStats []struct {
				BatchSize     uint64                     `json:"batch_size"`
				ComputeInput  struct{ Count, NS uint64 } `json:"compute_input"`
				ComputeInfer  struct{ Count, NS uint64 } `json:"compute_infer"`
				ComputeOutput struct{ Count, NS uint64 } `json:"compute_output"`
			} `json:"batch_stats"`
		} `json:"model_stats"`
	}
	if err := jsonUnmarshal(b, &st); err != nil || len(st.ModelStats) != 1 {
		t.Fatalf("statistics %s: %v", b, err)
	}
	s := st.ModelStats[0]
	in := s.InferenceStats
	var rows, runs, computeNS uint64
	for _, bs := range s.BatchStats {
		rows += bs.BatchSize * bs.ComputeInfer.Count
		runs += bs.ComputeInfer.Count
		computeNS += bs.ComputeInput.NS + bs.ComputeInfer.NS + bs.ComputeOutput.NS
	}

	resp, b = call(t, http.MethodGet, base+"/metrics", nil, nil)
	ok200(t, "metrics", resp, b)
	m := string(b)
	fraud := `model="fraud"`
	eq := func(what string, stat uint64, metric float64) {
		t.Helper()
		if float64(stat) != metric {
			t.Errorf("%s: statistics %d, metrics %v", what, stat, metric)
		}
	}
	eq("successful requests", in["success"].Count, promSum(m, "servekit_requests_total", fraud, `code="ok"`))
	eq("failed requests", in["fail"].Count, promSum(m, "servekit_requests_total", fraud)-promSum(m, "servekit_requests_total", fraud, `code="ok"`))
	eq("cache hits", in["cache_hit"].Count, promSum(m, "servekit_cache_hits_total", fraud)+promSum(m, "servekit_cache_coalesced_total", fraud))
	eq("cache misses", in["cache_miss"].Count, promSum(m, "servekit_cache_misses_total", fraud))
	eq("executions", s.ExecutionCount, promSum(m, "servekit_model_inference_duration_seconds_count", fraud, `code="ok"`))
	eq("runs in batch_stats", runs, float64(s.ExecutionCount))
	eq("rows run", rows, promSum(m, "servekit_batch_size_sum", fraud))
	eq("inference count", s.InferenceCount, float64(rows))
	near := func(what string, ns uint64, seconds float64) {
		t.Helper()
		if math.Abs(float64(ns)/1e9-seconds) > 1e-6 {
			t.Errorf("%s: statistics %dns, metrics %vs", what, ns, seconds)
		}
	}
	eq("queued requests", in["queue"].Count, promSum(m, "servekit_batch_queue_duration_seconds_count", fraud))
	near("queue time", in["queue"].NS, promSum(m, "servekit_batch_queue_duration_seconds_sum", fraud)+promSum(m, "servekit_limit_queue_duration_seconds_sum", fraud))
	near("compute time", computeNS, promSum(m, "servekit_model_inference_duration_seconds_sum", fraud, `code="ok"`))
	// And the traffic is what was sent: every request succeeded, the
	// repeats were hits, the batches joined requests.
	if in["success"].Count != clients*each+15 || in["cache_hit"].Count < 15 || in["fail"].Count != 0 {
		t.Errorf("success %d, hits %d, failures %d for %d requests of which 15 repeats", in["success"].Count, in["cache_hit"].Count, in["fail"].Count, clients*each+15)
	}
	if s.ExecutionCount == 0 || in["queue"].Count != in["cache_miss"].Count {
		t.Errorf("executions %d; queue count %d, want one per miss (%d)", s.ExecutionCount, in["queue"].Count, in["cache_miss"].Count)
	}
}

// postRow sends one fraud row whose first feature is x.
func postRow(t *testing.T, base string, x float32) {
	t.Helper()
	body := fmt.Sprintf(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[%v,1,2,3,4,5,6,7]}]}`, x)
	resp, err := http.Post(base+"/v2/models/fraud/infer", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("infer: %d %s", resp.StatusCode, b)
	}
}

// promSum sums the samples of a Prometheus text series whose labels
// contain every one of labels; 0 when there are none.
func promSum(text, name string, labels ...string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		all := true
		for _, l := range labels {
			all = all && strings.Contains(m[1], l)
		}
		if all {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
