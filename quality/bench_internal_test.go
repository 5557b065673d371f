package quality

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
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

// BenchmarkObservePath splits BenchmarkObserve's cost: "request" is the
// middleware's part on the caller's goroutine (find the model, copy the
// score, hash the id, append to the buffer under its lock), the buffer
// emptied by hand every 4096; "worker" is the worker's part per
// prediction (take a batch of 4096 in: stamp, find the version, remember
// it in the ring, forgetting the oldest once full), for a ring of the
// default size and one that fits in the caches.
func BenchmarkObservePath(b *testing.B) {
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = fmt.Sprintf("tx-%d", i)
	}
	x, _ := serving.NewTensor("features", []int64{1, 8}, make([]float32, 8))
	score, _ := serving.NewTensor("score", []int64{1, 1}, []float32{0.7})
	resp := &serving.Response{Model: "fraud", Version: "1", Outputs: []serving.Tensor{score}}
	b.Run("request", func(b *testing.B) {
		m, err := NewMonitor(WithTask("fraud", BinaryTask("score")), WithDetectors(), WithQueue(1<<13))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		req := &serving.Request{Model: "fraud", Version: "1", Inputs: []serving.Tensor{x}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			req.ID = ids[i%len(ids)]
			m.observe(req, resp)
			if i%4096 == 4095 {
				m.buf.mu.Lock()
				m.buf.obs, m.buf.scores, m.buf.requests = m.buf.obs[:0], m.buf.scores[:0], 0
				m.buf.mu.Unlock()
			}
		}
		if d := m.n.dropped.Load(); d > 0 {
			b.Fatalf("%d dropped", d)
		}
	})
	for _, memory := range []int{DefaultMemory, 1 << 14} {
		b.Run(fmt.Sprintf("worker/memory=%d", memory), func(b *testing.B) {
			m, err := NewMonitor(WithTask("fraud", BinaryTask("score")), WithDetectors(), WithMemory(memory, time.Hour),
				WithWindow(CountWindow(1<<30)))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			pl := m.lookup("fraud")
			const batch = 4096
			obsv := make([]obs, batch)
			scores := make([]float64, batch)
			done := make(chan struct{})
			keys := make([]uint64, len(ids))
			for i, id := range ids {
				keys[i] = m.hash(id)
			}
			m.ctrl <- func() {
				defer close(done)
				// Fill the ring first: the steady state, where each
				// prediction also forgets the oldest.
				for i := 0; i < memory+batch; i += batch {
					for j := range batch {
						obsv[j], scores[j] = obs{plan: pl, version: "1", key: keys[(i+j)%len(keys)]}, 0.7
					}
					m.w.take(obsv, scores)
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					j := i % batch
					obsv[j] = obs{plan: pl, version: "1", key: keys[(memory+batch+i)%len(keys)]}
					scores[j] = 0.7
					if j == batch-1 {
						m.w.take(obsv, scores)
					}
				}
			}
			<-done
		})
	}
}
