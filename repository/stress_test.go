package repository_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

// The target: 64 concurrent callers while version 2 is hot-reloaded
// from disk 100 times, every seventh time to a corrupted file. Zero failed
// requests; every response names the version that really answered; a
// caller never sees an older generation after a newer one (no request
// reaches a replaced Predictor); every replaced Predictor is closed (the
// cleanup checks the fake's live count) and no goroutine leaks (TestMain).
func TestHotReloadUnderLoad(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}}`,
		"m/1/model.onnx": "ok gen 0",
		"m/2/model.onnx": "ok gen 0",
	})
	f := newLoader()
	r := open(t, root, f)
	rt, _ := r.Router("m")

	const callers, reloads = 64, 100
	stop := hammer(callers, func(c int) func() error {
		pin := []string{"", "", "1", "2"}[c%4] // half routed, a quarter pinned to each
		x, _ := serving.Make("x", serving.FP32, []int64{1, 1})
		lastGen := map[string]int{}
		return func() error {
			resp, err := rt.Predict(context.Background(), &serving.Request{Model: "m", Version: pin, Inputs: []serving.Tensor{x}})
			if err != nil {
				return err
			}
			out, _ := resp.Output("who")
			who, _ := out.Strings()
			version, gen, err := parseWho(who[0])
			switch {
			case err != nil:
				return err
			case resp.Version != version:
				return fmt.Errorf("response says version %q, answered by %s", resp.Version, who[0])
			case pin != "" && version != pin:
				return fmt.Errorf("pinned to %s, answered by %s", pin, who[0])
			case pin == "" && version != "2":
				return fmt.Errorf("routed request answered by %s, want the latest version, 2", who[0])
			case gen < lastGen[version]:
				return fmt.Errorf("generation went back from %d to %d on version %s", lastGen[version], gen, version)
			}
			lastGen[version] = gen
			return nil
		}
	})

	corrupted := 0
	for i := 1; i <= reloads; i++ {
		content := fmt.Sprintf("ok gen %d", i)
		if i%7 == 0 {
			content = "fail: truncated protobuf"
			corrupted++
		}
		write(t, root, map[string]string{"m/2/model.onnx": content})
		if err := r.Sync(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		v := versionStatus(r, "m", "2")
		if v.State != repository.StateReady || (i%7 == 0) != strings.Contains(v.Reason, "truncated") {
			t.Fatalf("reload %d (%q): status %+v", i, content, v)
		}
	}
	answers, failures, first := stop()
	if failures != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failures, answers+failures, first)
	}
	if answers < callers {
		t.Fatalf("only %d answers", answers)
	}
	if got := f.loads.Load(); got != 2+reloads {
		t.Errorf("%d loads, want %d", got, 2+reloads)
	}
	if n := f.live.Load(); n != 2 {
		t.Errorf("%d Predictors open after the reloads, want 2", n)
	}
	who, _, err := ask(t, r, "m", "")
	if err != nil || who != fmt.Sprintf("m/2:ok gen %d", reloads) {
		t.Errorf("after the reloads: %q, %v", who, err)
	}
	t.Logf("%d answers across %d reloads (%d to a corrupted file)", answers, reloads, corrupted)
}

func parseWho(who string) (version string, gen int, err error) {
	// "m/<version>:ok gen <n>"
	rest, ok := strings.CutPrefix(who, "m/")
	v, g, ok2 := strings.Cut(rest, ":ok gen ")
	if !ok || !ok2 {
		return "", 0, fmt.Errorf("unexpected answer %q", who)
	}
	gen, err = strconv.Atoi(g)
	return v, gen, err
}
