package report_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// chromium finds a Chromium to drive, or skips; where
// SERVEKIT_REQUIRE_CHROMIUM=1 (CI) a missing browser fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SERVEKIT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("Chromium required (SERVEKIT_REQUIRE_CHROMIUM=1) but not found; scripts/install-deps.sh installs Debian's chromium")
	}
	t.Skip("Chromium not found; install Debian's chromium (scripts/install-deps.sh) to test the report in a browser")
	return ""
}

// qualitySection is a quality monitor with a few windows of a binary
// model, the last two under concept shift and labelled: its section has
// estimates, bands, realized values and an alarm to draw.
func qualitySection(t *testing.T) *quality.Monitor {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	draw := func(concept bool) (s, y float64) {
		z := r.NormFloat64()
		p := 1 / (1 + math.Exp(-z))
		if concept {
			p = 1 / (1 + math.Exp(-0.3*z))
		}
		return 1 / (1 + math.Exp(-1.5*z)), b2f(r.Float64() < p)
	}
	rb, err := quality.NewReferenceBuilder("fraud<b>", "2", quality.BinaryTask("score"))
	require.NoError(t, err)
	for range 4000 {
		s, y := draw(false)
		require.NoError(t, rb.Add([]float64{s}, y))
	}
	ref, err := rb.Reference()
	require.NoError(t, err)
	qm, err := quality.NewMonitor(quality.WithReference(ref), quality.WithWindow(quality.CountWindow(300)), quality.WithQueue(1<<12))
	require.NoError(t, err)
	t.Cleanup(func() { qm.Close() })
	p := qm.Middleware()(servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		out := req.Inputs[0]
		out.Name = "score"
		return &serving.Response{Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
	}))
	for w := range 5 {
		var labels []quality.Label
		for i := range 300 {
			s, y := draw(w >= 3)
			x, _ := serving.NewTensor("x", []int64{1}, []float64{s})
			id := fmt.Sprintf("w%d-%d", w, i)
			_, err := p.Predict(context.Background(), &serving.Request{ID: id, Model: "fraud<b>", Version: "2", Inputs: []serving.Tensor{x}})
			require.NoError(t, err)
			labels = append(labels, quality.Label{ID: id, Value: y})
		}
		_, err := qm.Label(context.Background(), "fraud<b>", labels)
		require.NoError(t, err)
	}
	require.NoError(t, qm.Flush(context.Background()))
	return qm
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The report page, loaded in headless Chromium: no console error, no
// failed or outside request, and every chart drawn with a size — the
// drift charts, the data-quality table, the multivariate check, and the
// model-quality part.
func TestReportInChromium(t *testing.T) {
	exe := chromium(t)
	srv := httptest.NewServer(report.Handler(report.Drift(reportMonitor(t)), report.Quality(qualitySection(t))))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		// Without these Chromium waits on services a closed network lacks.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1320, 1000),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	var requests []string
	err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				problems = append(problems, fmt.Sprintf("console.%s", e.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventLoadingFailed:
			problems = append(problems, "request failed: "+e.ErrorText)
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				problems = append(problems, fmt.Sprintf("%s: HTTP %d", e.Response.URL, e.Response.Status))
			}
		}
	})
	require.NoError(t, err, "start Chromium")
	type result struct {
		Charts []struct {
			Class string  `json:"cls"`
			W     float64 `json:"w"`
			H     float64 `json:"h"`
			Shown int     `json:"shown"`
		} `json:"charts"`
		Features int    `json:"features"`
		Quality  int    `json:"quality"`
		Rows     int    `json:"rows"`
		Images   int    `json:"images"`
		Hostile  bool   `json:"hostile"`
		Title    string `json:"title"`
	}
	_, err = chromedp.Call(bctx, log.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(bctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(srv.URL), chromedp.WaitReady(chromedp.CSS("main"))))
	got, err := chromedp.Run(bctx, chromedp.Evaluate[result](`(() => {
		const shown = s => [...s.querySelectorAll('rect,circle,polyline')].filter(e => {
			const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0 }).length;
		return {
			charts: [...document.querySelectorAll('svg')].map(s => {
				const r = s.getBoundingClientRect();
				return {cls: s.getAttribute('class'), w: r.width, h: r.height, shown: shown(s)};
			}),
			features: document.querySelectorAll('.grid .feature:not(.quality .feature)').length,
			quality: document.querySelectorAll('#model-quality svg.qchart').length,
			rows: document.querySelectorAll('table.quality tbody tr').length,
			images: document.querySelectorAll('img').length,
			hostile: document.body.innerText.includes('<img src=x onerror=alert(1)>'),
			title: document.title,
		};
	})()`))
	require.NoError(t, err)
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	if path := os.Getenv("DRIFT_SCREENSHOT"); path != "" {
		require.NoError(t, os.WriteFile(path, shot, 0o644))
	}

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, problems, "console errors or failed requests")
	for _, u := range requests {
		assert.Equal(t, srv.URL+"/", u, "the page loads nothing else")
	}
	assert.Equal(t, "Model monitoring report", got.Title)
	assert.Equal(t, 5, got.Features)
	assert.Equal(t, 5, got.Rows, "a data-quality row per feature")
	assert.Equal(t, 4, got.Quality, "a chart per judged metric: accuracy, F1, AUC, log loss")
	assert.Zero(t, got.Images, "a hostile name became an element")
	assert.True(t, got.Hostile, "the hostile name shows as text")
	kinds := map[string]int{}
	for _, c := range got.Charts {
		kinds[c.Class]++
		assert.Positive(t, c.W, c.Class)
		assert.Positive(t, c.H, c.Class)
		assert.Positive(t, c.Shown, "%s draws nothing visible", c.Class)
	}
	assert.Equal(t, map[string]int{"strip": 1, "chart": 5, "spark": 6, "chart qchart": 4}, kinds)
	assert.Greater(t, len(shot), 10000, "a screenshot with content")
}
