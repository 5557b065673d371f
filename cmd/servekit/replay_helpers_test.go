package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"
)

// What Triton's tools read, read the way they read it. perf_analyzer and
// Triton's C++ client parse answers with rapidjson and index members
// without checking (a missing member is an assertion, a crash), read
// counts with GetUint64 (a JSON number, never a string) and dims with
// their GetInt (a number or a decimal string); Python's client is json.
// These helpers fail the test where those tools would fail.

// doc is a JSON document decoded as rapidjson holds it: numbers kept as
// written.
type doc = any

func decodeDoc(t *testing.T, b []byte) doc {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON (rapidjson's Parse fails): %v: %.300s", err, b)
	}
	return v
}

// member is rapidjson's operator[]: the member must be there.
func member(t *testing.T, v doc, keys ...string) doc {
	t.Helper()
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%q of a %T: rapidjson asserts", k, v)
		}
		if v, ok = o[k]; !ok {
			t.Fatalf("member %q missing (rapidjson asserts; perf_analyzer crashes) in %v", k, o)
		}
	}
	return v
}

func has(v doc, key string) bool {
	o, ok := v.(map[string]any)
	_, found := o[key]
	return ok && found
}

func str(t *testing.T, v doc) string {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("GetString of %T %v", v, v)
	}
	return s
}

func boolean(t *testing.T, v doc) bool {
	t.Helper()
	b, ok := v.(bool)
	if !ok {
		t.Fatalf("GetBool of %T %v", v, v)
	}
	return b
}

func list(t *testing.T, v doc) []any {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("GetArray of %T %v", v, v)
	}
	return a
}

// u64 is rapidjson's GetUint64: a non-negative integer JSON number.
func u64(t *testing.T, v doc) uint64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("GetUint64 of %T %v: a count must be a JSON number (protojson writes 64-bit integers as strings; Triton does not)", v, v)
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		t.Fatalf("GetUint64 of %s: %v", n, err)
	}
	return u
}

// paInt is perf_analyzer's ModelParser::GetInt: a decimal string or an
// integer number.
func paInt(t *testing.T, v doc) int64 {
	t.Helper()
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			t.Fatalf("unable to convert %q to integer", x)
		}
		return n
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			t.Fatalf("failed to parse the integer value %s", x)
		}
		return n
	}
	t.Fatalf("failed to parse the integer value %T %v", v, v)
	return 0
}

// tensor is what perf_analyzer's model parser keeps of a metadata tensor:
// the shape without the batch dimension when the model batches.
type tensor struct {
	name, datatype string
	shape          []int64
}

// parseTensors is ModelParser::InitTriton's reading of metadata inputs or
// outputs.
func parseTensors(t *testing.T, md doc, key string, maxBatch int64) []tensor {
	t.Helper()
	var out []tensor
	for _, x := range list(t, member(t, md, key)) {
		tt := tensor{name: str(t, member(t, x, "name")), datatype: str(t, member(t, x, "datatype"))}
		for i, d := range list(t, member(t, x, "shape")) {
			if i == 0 && maxBatch > 0 {
				continue
			}
			tt.shape = append(tt.shape, paInt(t, d))
		}
		out = append(out, tt)
	}
	return out
}

// serverStats is what perf_analyzer's ParseStatistics keeps of one model
// version's statistics.
type serverStats struct {
	inference, execution                                   uint64
	success, queue, computeInput, computeInfer, computeOut uint64 // counts
	successNS, queueNS, inputNS, inferNS, outputNS         uint64
	cacheHit, cacheHitNS, cacheMiss, cacheMissNS           uint64
}

// parseStatsJSON is TritonClientBackend::ParseStatistics for the JSON
// answer: every member it reads, read as it reads them.
func parseStatsJSON(t *testing.T, b []byte) map[[2]string]serverStats {
	t.Helper()
	out := map[[2]string]serverStats{}
	for _, s := range list(t, member(t, decodeDoc(t, b), "model_stats")) {
		in := func(k, f string) uint64 { return u64(t, member(t, s, "inference_stats", k, f)) }
		out[[2]string{str(t, member(t, s, "name")), str(t, member(t, s, "version"))}] = serverStats{
			inference: u64(t, member(t, s, "inference_count")), execution: u64(t, member(t, s, "execution_count")),
			success: in("success", "count"), queue: in("queue", "count"), computeInput: in("compute_input", "count"),
			computeInfer: in("compute_infer", "count"), computeOut: in("compute_output", "count"),
			successNS: in("success", "ns"), queueNS: in("queue", "ns"), inputNS: in("compute_input", "ns"),
			inferNS: in("compute_infer", "ns"), outputNS: in("compute_output", "ns"),
			cacheHit: in("cache_hit", "count"), cacheHitNS: in("cache_hit", "ns"),
			cacheMiss: in("cache_miss", "count"), cacheMissNS: in("cache_miss", "ns"),
		}
	}
	return out
}

// statsVersion is InferenceProfiler::DetermineStatsModelVersion with no
// version given: the one version of the model whose queue count grew,
// which must be a number (perf_analyzer parses it with std::stoll).
func statsVersion(t *testing.T, model string, before, after map[[2]string]serverStats) string {
	t.Helper()
	found := ""
	for id, s := range after {
		if id[0] != model || s.queue <= before[id].queue {
			continue
		}
		if found != "" {
			t.Errorf("two versions of %s had requests queued: %s and %s", model, found, id[1])
		}
		if _, err := strconv.ParseInt(id[1], 10, 64); err != nil {
			t.Fatalf("version %q is not a number: perf_analyzer's stoll throws", id[1])
		}
		found = id[1]
	}
	if found == "" {
		t.Fatalf("failed to find the requested model version: no version of %s counted queued requests", model)
	}
	return found
}

// rawFloats is a tensor's raw bytes as float32s, little-endian.
func rawFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func floatsRaw(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// call sends a request with exactly the given headers and body, as a tool
// does, and returns the answer.
func call(t *testing.T, method, url string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// ok200 is what every client checks first: 200, else the body's "error".
func ok200(t *testing.T, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
	}
}

func containsStr(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
