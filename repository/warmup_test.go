package repository_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

func TestWarmupOffByDefault(t *testing.T) {
	f := newLoader()
	open(t, tree(t, map[string]string{"m/1/model.onnx": "ok"}), f)
	if n := len(f.warmups("m/1")); n != 0 {
		t.Errorf("%d warm-up requests without a model_warmup", n)
	}
}

// Every way of giving warm-up data reaches the model as configured, through
// Predict, Count times, with the cache bypassed, before the version serves.
func TestWarmupSamples(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json": `{"model_warmup": [
			{"name": "zeros", "count": 2, "inputs": {
				"x":  {"data_type": "FP32", "dims": [1, 3], "zero_data": true},
				"sr": {"data_type": "TYPE_INT64", "dims": [], "data": [16000]},
				"s":  {"data_type": "TYPE_STRING", "dims": [2], "data": ["a", "b"]}
			}},
			{"name": "random", "inputs": {
				"x": {"data_type": "FP16", "dims": [2, 2], "random_data": true},
				"i": {"data_type": "INT32", "dims": [4], "random_data": true}
			}},
			{"request_file": "warmup/sample.json"}
		]}`,
		"m/warmup/sample.json": `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [[0.5, -1]]}]}`,
		"m/1/model.onnx":       "ok",
	})
	f := newLoader()
	r := open(t, root, f)
	if got := states(r, "m"); got != "1:ready" {
		t.Fatalf("state %s: %+v", got, r.Status())
	}
	reqs := f.warmups("m/1")
	if len(reqs) != 4 {
		t.Fatalf("%d warm-up requests, want 2 + 1 + 1", len(reqs))
	}
	describe := func(req *serving.Request) string {
		var parts []string
		for _, in := range req.Inputs {
			parts = append(parts, fmt.Sprintf("%s:%v%v", in.Name, in.DataType, in.Shape))
		}
		return strings.Join(parts, " ")
	}
	for i, want := range []string{
		"s:BYTES[2] sr:INT64[] x:FP32[1 3]",
		"s:BYTES[2] sr:INT64[] x:FP32[1 3]",
		"i:INT32[4] x:FP16[2 2]",
		"x:FP32[1 2]",
	} {
		if got := describe(reqs[i]); got != want {
			t.Errorf("warm-up request %d: %s, want %s", i, got, want)
		}
		if reqs[i].Model != "m" || reqs[i].Version != "1" {
			t.Errorf("warm-up request %d names %s/%s", i, reqs[i].Model, reqs[i].Version)
		}
	}
	sr, _ := reqs[0].Input("sr")
	if v, _ := serving.Values[int64](sr); !reflect.DeepEqual(v, []int64{16000}) {
		t.Errorf("sr = %v, want [16000]", v)
	}
	s, _ := reqs[0].Input("s")
	if v, _ := s.Strings(); !reflect.DeepEqual(v, []string{"a", "b"}) {
		t.Errorf("s = %v", v)
	}
	x, _ := reqs[0].Input("x")
	if v, _ := serving.Values[float32](x); !reflect.DeepEqual(v, []float32{0, 0, 0}) {
		t.Errorf("zero_data x = %v", v)
	}
	xi, _ := reqs[2].Input("i")
	iv, _ := serving.Values[int32](xi)
	if reflect.DeepEqual(iv, []int32{0, 0, 0, 0}) {
		t.Errorf("random_data gave zeros: %v", iv)
	}
	for _, n := range iv {
		if n < 0 || n >= 100 {
			t.Errorf("random INT32 %d outside [0, 100)", n)
		}
	}
	xf, _ := reqs[3].Input("x")
	if v, _ := serving.Values[float32](xf); !reflect.DeepEqual(v, []float32{0.5, -1}) {
		t.Errorf("request_file x = %v", v)
	}

	// Random data is the same at every load: a failing warm-up fails the
	// same way when retried.
	write(t, root, map[string]string{"m/1/model.onnx": "ok again"})
	resync(t, r)
	again := f.warmups("m/1")[6]
	if !reflect.DeepEqual(again.Inputs, reqs[2].Inputs) {
		t.Errorf("random warm-up data changed between loads")
	}
}

// The Silero VAD story on fakes: a warm-up with the model's real shapes
// passes; the old zeros-with-ones warm-up fails that version with the
// reason, and the rest keeps serving.
func TestWarmupFailureKeepsVersionOut(t *testing.T) {
	root := tree(t, map[string]string{
		"vad/config.json":    `{"version_policy": {"all": {}}, "model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [1, 512], "zero_data": true}}}]}`,
		"vad/1/model.onnx":   "dims=1,512",
		"ones/config.json":   `{"model_warmup": [{"inputs": {"x": {"data_type": "FP32", "dims": [1, 1], "zero_data": true}}}]}`,
		"ones/1/model.onnx":  "dims=1,512",
		"other/1/model.onnx": "ok",
	})
	f := newLoader()
	r := open(t, root, f)
	if got := states(r, "vad"); got != "1:ready" {
		t.Errorf("vad with real warm-up shapes: %s", got)
	}
	v := versionStatus(r, "ones", "1")
	if v.State != repository.StateFailed || !strings.Contains(v.Reason, "Pad reflect") || !strings.Contains(v.Reason, "warm-up sample 0, run 1 of 1") {
		t.Errorf("ones: %+v, want failed naming the warm-up and the model's error", v)
	}
	if _, _, err := ask(t, r, "ones", ""); serving.CodeOf(err) != serving.Unavailable {
		t.Errorf("a request to the failed model: %v, want Unavailable", err)
	}
	if who, _, err := ask(t, r, "other", ""); err != nil || who != "other/1:ok" {
		t.Errorf("other: %q, %v", who, err)
	}
	if n := f.live.Load(); n != 2 {
		t.Errorf("%d Predictors open, want 2: the one that failed its warm-up must be closed", n)
	}
	// A new version of vad whose warm-up fails leaves version 1 serving.
	write(t, root, map[string]string{"vad/2/model.onnx": "dims=1,256"})
	resync(t, r)
	if got := states(r, "vad"); got != "1:ready 2:failed" {
		t.Errorf("vad after a bad version 2: %s", got)
	}
	if _, v, err := askShape(t, r, "vad", "", 1, 512); err != nil || v != "1" {
		t.Errorf("vad answers as %q, %v; want version 1", v, err)
	}
}
