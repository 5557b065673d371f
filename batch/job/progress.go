package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/term"

	"github.com/servekit/servekit/rowio"
)

// ScopeName is the instrumentation scope of the job's metrics.
const ScopeName = "github.com/servekit/servekit/batch/job"

// tracker holds the figures progress and metrics show, shared through
// atomics between the reader, the writer and whoever reads them.
type tracker struct {
	begin      time.Time
	ok, failed atomic.Int64 // rows written, rows dead-lettered (this run)
	parts      atomic.Int64 // parts committed (this run)
	done       atomic.Int64 // input read, in the reader's unit (bytes or rows)
	total      atomic.Int64
	done0      atomic.Int64 // done when the first batch was read: what an earlier run did
	started    atomic.Bool
}

// position records the reader's progress; called by the reader only.
func (t *tracker) position(r rowio.Reader) {
	d, total := r.Progress()
	t.done.Store(d)
	t.total.Store(total)
}

// figures are one reading of the tracker.
type figures struct {
	rows, failed int64
	elapsed      time.Duration
	rate         float64 // rows per second
	frac         float64 // of the input read; -1 when unknown
	eta          time.Duration
}

func (t *tracker) read() figures {
	f := figures{rows: t.ok.Load(), failed: t.failed.Load(), elapsed: time.Since(t.begin), frac: -1, eta: -1}
	if s := f.elapsed.Seconds(); s > 0 {
		f.rate = float64(f.rows+f.failed) / s
	}
	done, total := t.done.Load(), t.total.Load()
	if !t.started.Load() && f.rows+f.failed > 0 {
		t.started.Store(true)
		t.done0.Store(done)
	}
	if total > 0 {
		f.frac = min(1, float64(done)/float64(total))
		if d0 := t.done0.Load(); done > d0 && f.rows+f.failed > 0 {
			f.eta = time.Duration(float64(f.elapsed) * float64(total-done) / float64(done-d0))
		}
	}
	return f
}

// startProgress draws progress on the configured writer until the
// returned stop is called, which draws the last figures.
func (j *run) startProgress() (stop func(error)) {
	w := j.cfg.progress
	if w == nil {
		return func(error) {}
	}
	tty := isTerminal(w)
	every := j.cfg.every
	if every <= 0 {
		every = DefaultProgressLineInterval
		if tty {
			every = DefaultProgressInterval
		}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw(w, j.tr.read(), tty)
			case <-quit:
				return
			}
		}
	})
	return func(err error) {
		close(quit)
		wg.Wait()
		draw(w, j.tr.read(), tty)
		if tty {
			fmt.Fprintln(w)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// draw writes one progress reading: a bar redrawn in place on a terminal,
// a line otherwise.
func draw(w io.Writer, f figures, tty bool) {
	pct, eta := "  ?  ", "?"
	if f.frac >= 0 {
		pct = fmt.Sprintf("%5.1f%%", 100*f.frac)
	}
	if f.eta >= 0 {
		eta = f.eta.Round(time.Second).String()
	}
	if !tty {
		fmt.Fprintf(w, "job: %s read, %d rows, %d failed, %.0f rows/s, ETA %s, %s elapsed\n",
			strings.TrimSpace(pct), f.rows, f.failed, f.rate, eta, f.elapsed.Round(time.Second))
		return
	}
	const width = 30
	filled := 0
	if f.frac >= 0 {
		filled = int(f.frac * width)
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(w, "\r%s %s %d rows  %d failed  %.0f rows/s  ETA %s   ", bar, pct, f.rows, f.failed, f.rate, eta)
}

// startTelemetry registers the job's metrics, read from the tracker at
// each collection (recording costs the job nothing per row), until the
// returned function unregisters them.
func (j *run) startTelemetry() func() {
	m := j.cfg.meters.Meter(ScopeName)
	rows, err1 := m.Int64ObservableCounter("servekit.job.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Input rows this run scored (outcome=ok) or sent to the dead letters (outcome=failed)."))
	parts, err2 := m.Int64ObservableCounter("servekit.job.parts", metric.WithUnit("{part}"),
		metric.WithDescription("Parts this run committed."))
	progress, err3 := m.Float64ObservableGauge("servekit.job.progress", metric.WithUnit("1"),
		metric.WithDescription("Share of the input read, 0 to 1."))
	rate, err4 := m.Float64ObservableGauge("servekit.job.rate", metric.WithUnit("{row}/s"),
		metric.WithDescription("Rows per second over this run."))
	eta, err5 := m.Float64ObservableGauge("servekit.job.eta", metric.WithUnit("s"),
		metric.WithDescription("Estimated seconds left."))
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return func() {} // metrics are never worth failing a job
		}
	}
	base := []attribute.KeyValue{attribute.String("model", j.md.Name), attribute.Int("shard", j.cfg.shard)}
	okSet := metric.WithAttributes(append(base, attribute.String("outcome", "ok"))...)
	failSet := metric.WithAttributes(append(base, attribute.String("outcome", "failed"))...)
	attrs := metric.WithAttributes(base...)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		f := j.tr.read()
		o.ObserveInt64(rows, f.rows, okSet)
		o.ObserveInt64(rows, f.failed, failSet)
		o.ObserveInt64(parts, j.tr.parts.Load(), attrs)
		if f.frac >= 0 {
			o.ObserveFloat64(progress, f.frac, attrs)
		}
		o.ObserveFloat64(rate, f.rate, attrs)
		if f.eta >= 0 {
			o.ObserveFloat64(eta, f.eta.Seconds(), attrs)
		}
		return nil
	}, rows, parts, progress, rate, eta)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
