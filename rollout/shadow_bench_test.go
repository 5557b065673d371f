package rollout_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// BenchmarkShadowOverhead is the shadow-overhead target: the
// primary's latency and ns/op with no shadow and with a 100 % shadow to a
// healthy, a hanging, a panicking and an erroring challenger, side by side
// in one run. The primary is the demo fraud model on ONNX Runtime (one
// row); the healthy challenger is a second session of it. "serial" is one
// caller back to back (latency); "c4" is four concurrent callers on the
// machine's cores (the shadow's work competing with them).
//
// The machines this runs on are shared and noisy, so each shadowed cell
// interleaves its calls with calls to the bare primary, in blocks of
// overheadBlock, and reports both: ns/op, p50-µs and p99-µs are the
// shadowed primary's, base-p50-µs and base-p99-µs the bare primary's in the
// same moments, and p50-x and p99-x their ratios. Before each bare block
// the timer stops and mirrors still in flight get up to 2 ms to finish, so
// the baseline does not carry the shadow's work. mirrored/op is the share
// of requests the shadow mirrored (the rest were dropped: every runner
// busy and the queue full; a hanging challenger holds them all).
func BenchmarkShadowOverhead(b *testing.B) {
	primary := orttest.Fraud(b)
	healthy := orttest.Fraud(b)
	req := fraudRequest(b)
	quiet := slog.New(slog.DiscardHandler)
	challengers := []struct {
		name string
		p    serving.Predictor
	}{
		{"healthy", healthy},
		{"hanging", servingtest.Func(func(ctx context.Context, _ *serving.Request) (*serving.Response, error) {
			<-ctx.Done()
			return nil, serving.ContextError(ctx, "hang")
		})},
		{"panicking", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
			panic("challenger bug")
		})},
		{"erroring", servingtest.Failing(serving.Errorf(serving.Unavailable, "challenger down"))},
	}
	for _, conc := range []int{1, 4} {
		mode := "serial"
		if conc > 1 {
			mode = "c4"
		}
		b.Run(mode+"/none", func(b *testing.B) {
			lat := timeCalls(b, primary, req, conc, b.N)
			reportLatency(b, lat, "")
		})
		for _, c := range challengers {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				s, err := rollout.NewShadow(c.p, rollout.WithMirrorTimeout(100*time.Millisecond), rollout.WithShadowLogger(quiet))
				if err != nil {
					b.Fatal(err)
				}
				shadowed := s.Middleware()(primary)
				var with, without []time.Duration
				for done := 0; done < b.N; {
					n := min(overheadBlock, b.N-done)
					b.StopTimer()
					settle(s)
					without = append(without, timeCalls(b, primary, req, conc, n)...)
					b.StartTimer()
					with = append(with, timeCalls(b, shadowed, req, conc, n)...)
					done += n
				}
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				p50, p99 := reportLatency(b, with, "")
				b50, b99 := reportLatency(b, without, "base-")
				b.ReportMetric(p50/b50, "p50-x")
				b.ReportMetric(p99/b99, "p99-x")
				b.ReportMetric(float64(s.Snapshot().Mirrored)/float64(len(with)), "mirrored/op")
			})
		}
	}
}

const overheadBlock = 200

// settle gives mirrors in flight up to 2 ms to finish.
func settle(s *rollout.Shadow) {
	for deadline := time.Now().Add(2 * time.Millisecond); s.Snapshot().InFlight > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Microsecond)
	}
}

// timeCalls makes n calls from conc goroutines and returns their latencies.
func timeCalls(b *testing.B, p serving.Predictor, req *serving.Request, conc, n int) []time.Duration {
	per := max(n/conc, 1)
	lat := make([][]time.Duration, conc)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range conc {
		lat[g] = make([]time.Duration, 0, per)
		wg.Go(func() {
			for range per {
				t0 := time.Now()
				if _, err := p.Predict(ctx, req); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...)
}

func reportLatency(b *testing.B, lat []time.Duration, prefix string) (p50, p99 float64) {
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	p50, p99 = q(0.50), q(0.99)
	b.ReportMetric(p50, prefix+"p50-µs")
	b.ReportMetric(p99, prefix+"p99-µs")
	return p50, p99
}

// fraudRequest is one row of the demo fraud model's 8 features.
func fraudRequest(tb testing.TB) *serving.Request {
	tb.Helper()
	x, err := serving.NewTensor("features", []int64{1, 8}, []float32{0.3, 0.5, 0.8, 1.2, 0.1, -0.4, 0, 1})
	if err != nil {
		tb.Fatal(err)
	}
	return &serving.Request{Model: "fraud", Inputs: []serving.Tensor{x}}
}
