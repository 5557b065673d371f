package remote_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// BenchmarkPredict: one model answered in process and through the client
// over each protocol, side by side in one run, at 8 to 2048 rows of 8
// FP32 (256 B to 64 KiB of input): what the hop costs, and what binary
// tensors save over JSON as requests grow (DefaultBinaryThreshold). Compare
// the ratios, not the times: the server runs in the same process, on the
// same cores.
func BenchmarkPredict(b *testing.B) {
	local := servingtest.Linear(8)
	srv := serve(b, "linear", local)
	for _, rows := range []int{8, 32, 128, 2048} {
		req := servingtest.Rows(8, rows, 0.25)
		run := func(name string, p serving.Predictor) {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Predict(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		run("in-process", local)
		for _, pr := range protocols {
			run(pr.name, dial(b, pr.target(srv), "linear", pr.opts...))
		}
	}
}
