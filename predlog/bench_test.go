package predlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving/servingtest"
)

type discard struct{}

func (discard) Write(context.Context, []predlog.Record) error { return nil }
func (discard) Close() error                                  { return nil }

// BenchmarkPredict is the cost a logged call adds on the request path:
// weigh, copy, queue.
func BenchmarkPredict(b *testing.B) {
	l := newLogger(b, servingtest.Linear(8), discard{})
	defer l.Close()
	req := servingtest.Rows(8, 4, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Predict(ctx, req)
	}
}

// BenchmarkFileSinkWrite is the logger goroutine's cost per batch of 64
// records written to JSONL.
func BenchmarkFileSinkWrite(b *testing.B) {
	sink, err := predlog.NewFileSink(b.TempDir(), rowio.JSONL, predlog.WithMaxBytes(1<<30))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	recs := make([]predlog.Record, 64)
	for i := range recs {
		req := servingtest.Rows(8, 1, float32(i))
		resp, _ := servingtest.Linear(8).Predict(context.Background(), req)
		recs[i] = predlog.Record{Time: time.Unix(0, 0), ID: "r", Model: "linear", Inputs: req.Inputs, Outputs: resp.Outputs}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := sink.Write(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}
