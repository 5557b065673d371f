package report_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/report"
)

// One page for both monitors, served beside the model (on a private
// listener: it shows live traffic's statistics).
func ExampleHandler() {
	mon, _ := drift.NewMonitor()
	defer mon.Close()
	qm, _ := quality.NewMonitor()
	defer qm.Close()

	srv := httptest.NewServer(report.Handler(report.Drift(mon), report.Quality(qm)))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Println(strings.Contains(string(page), "<title>Model monitoring report</title>"))
	// Output:
	// 200 text/html; charset=utf-8
	// true
}
