package quality

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWindow measures what the worker computes for one window of a
// binary model version with a reference: the CBPE estimate when it
// closes, and the realized metrics with every prediction labelled when it
// settles (each once), with the ring scan that gathers the rows.
func BenchmarkWindow(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	rb, _ := NewReferenceBuilder("m", "1", BinaryTask("score"))
	for range 5000 {
		s := r.Float64()
		rb.Add([]float64{s}, b2f(r.Float64() < s))
	}
	ref, err := rb.Reference()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("predictions=%d", n), func(b *testing.B) {
			m, err := NewMonitor(WithReference(ref), WithWindow(CountWindow(n+1)), WithDetectors(), WithQueue(n))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			done := make(chan struct{})
			m.ctrl <- func() {
				defer close(done)
				ms := m.w.model(m.lookup("m"))
				tr := m.w.tracker(ms, "1", m.cfg.clock.Now())
				now := m.cfg.clock.Now()
				for i := range n {
					s := r.Float64()
					m.w.add(ms, tr, &obs{key: uint64(i + 1), at: now.UnixNano()}, []float64{s}, now)
					seq := ms.ring.next - 1
					sl, _ := ms.ring.at(seq)
					sl.lt, sl.label = now.UnixNano()+1e9, b2f(r.Float64() < s)
				}
				win := tr.cur
				cpu := cpuTime()
				for b.Loop() {
					m.w.evaluate(tr, win, true)
					m.w.evaluate(tr, win, false)
				}
				spent := float64((cpuTime() - cpu).Nanoseconds())
				if got := win.res.Window.Labelled; got != 0 {
					b.Fatalf("labelled %d", got) // the counts come from the labels the API joins, set by hand here
				}
				if _, ok := win.est.get(AUC); !ok {
					b.Fatal("no estimate")
				}
				b.ReportMetric(spent/1e3/float64(b.N), "cpu-us/window")
				b.ReportMetric(spent/float64(b.N*n), "cpu-ns/prediction")
			}
			<-done
		})
	}
}
