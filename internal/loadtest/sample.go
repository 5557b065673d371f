package loadtest

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Sample is one reading of the server process.
type Sample struct {
	At         time.Duration // since the sampler started
	RSS        int64         // bytes
	Goroutines int64
	Phase      string // what the test was doing
}

// Sampler reads a server's RSS and goroutine count every interval until
// Stop. Phase labels the samples that follow it.
type Sampler struct {
	mu      sync.Mutex
	samples []Sample // guarded by mu
	phase   string   // guarded by mu
	errs    int      // guarded by mu
	start   time.Time
	stop    chan struct{}
	done    chan struct{}
}

// StartSampler samples s every interval on a goroutine of its own; Stop
// ends it.
func StartSampler(s *Server, interval time.Duration) *Sampler {
	sp := &Sampler{stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(sp.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sp.take(s, time.Since(sp.start), "")
			select {
			case <-sp.stop:
				return
			case <-t.C:
			}
		}
	}()
	return sp
}

// Take records one sample now, labelled phase ("" = the current phase):
// for readings at chosen moments, such as when no request is in flight.
func (sp *Sampler) Take(s *Server, phase string) { sp.take(s, time.Since(sp.start), phase) }

func (sp *Sampler) take(s *Server, at time.Duration, phase string) {
	rss, err1 := s.RSS()
	g, err2 := s.Goroutines()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err1 != nil || err2 != nil {
		sp.errs++
		return
	}
	if phase == "" {
		phase = sp.phase
	}
	sp.samples = append(sp.samples, Sample{At: at, RSS: rss, Goroutines: g, Phase: phase})
}

// Phase labels the samples from now on.
func (sp *Sampler) Phase(p string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.phase = p
}

// Stop ends sampling and returns the samples and how many readings failed.
// It is idempotent.
func (sp *Sampler) Stop() ([]Sample, int) {
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	<-sp.done
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return slices.Clone(sp.samples), sp.errs
}

// WriteCSV writes samples as CSV: seconds, rss_mib, goroutines, phase.
func WriteCSV(w io.Writer, samples []Sample) error {
	if _, err := fmt.Fprintln(w, "seconds,rss_mib,goroutines,phase"); err != nil {
		return err
	}
	for _, s := range samples {
		if _, err := fmt.Fprintf(w, "%.1f,%.1f,%d,%s\n", s.At.Seconds(), float64(s.RSS)/(1<<20), s.Goroutines, s.Phase); err != nil {
			return err
		}
	}
	return nil
}

// Drift summarises how a series moved after warm-up: the baseline is the
// median of the first window samples, and Max and Last are relative to it
// (1.05 = 5% above).
type Drift struct {
	Baseline  float64
	Min, Max  float64 // extremes relative to the baseline
	Last      float64 // median of the last window samples, relative to the baseline
	Samples   int
	Window    int
	FirstAt   time.Duration
	LastAt    time.Duration
	MaxSample Sample
}

// Measure computes the Drift of value over samples, with medians of
// window samples at each end (window ≥ 1; fewer than 2 windows of samples
// give a zero Drift).
func Measure(samples []Sample, window int, value func(Sample) float64) Drift {
	if window < 1 || len(samples) < 2*window {
		return Drift{}
	}
	median := func(ss []Sample) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = value(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	d := Drift{Baseline: median(samples[:window]), Samples: len(samples), Window: window,
		FirstAt: samples[0].At, LastAt: samples[len(samples)-1].At}
	d.Last = median(samples[len(samples)-window:]) / d.Baseline
	d.Min, d.Max = 1e18, 0
	for _, s := range samples {
		r := value(s) / d.Baseline
		d.Min = min(d.Min, r)
		if r > d.Max {
			d.Max, d.MaxSample = r, s
		}
	}
	return d
}

// RSSOf and GoroutinesOf read a Sample's series, for Measure.
func RSSOf(s Sample) float64        { return float64(s.RSS) }
func GoroutinesOf(s Sample) float64 { return float64(s.Goroutines) }
