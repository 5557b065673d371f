package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// kind names a step of the story, so the test can check their order
// without parsing prose.
type kind string

const (
	evNightly    kind = "nightly"     // the batch job scored the dataset with v1
	evServing    kind = "serving"     // the server is up with v1
	evShift      kind = "shift"       // the load generator's traffic drifted
	evDrift      kind = "drift"       // the monitor raised an alarm
	evTrained    kind = "trained"     // the retrainer wrote v2
	evLoaded     kind = "loaded"      // the repository loaded v2 (0 %)
	evShadow     kind = "shadow"      // v2's shadow comparison with v1
	evStep       kind = "step"        // a canary step began
	evPromoted   kind = "promoted"    // the plan succeeded: v2 has 100 %
	evRolledBack kind = "rolled_back" // a guard failed: v1 has 100 % again
	evTotals     kind = "totals"      // the load generator's tally
)

// event is one line of the timeline.
type event struct {
	At   time.Time
	Kind kind
	Text string
}

// timeline records what happens, from any goroutine (the drift monitor's
// worker, the retrainer, the controller, the load generator), prints each
// event as it comes, and the whole story in time order at the end. Times
// are relative to the start of the run: the story is the sequence and the
// gaps, not the wall clock.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	out   io.Writer // guarded by mu, as are events
	ev    []event
}

func newTimeline(out io.Writer) *timeline { return &timeline{start: time.Now(), out: out} }

// add records an event that happened at at (events may be reported after
// the fact: a plan step is seen by polling, with its exact start time).
func (t *timeline) add(at time.Time, k kind, format string, args ...any) {
	e := event{At: at, Kind: k, Text: fmt.Sprintf(format, args...)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ev = append(t.ev, e)
	fmt.Fprintf(t.out, "%s %s\n", t.stamp(e.At), e.Text)
}

// say prints a line that is not an event (progress, details).
func (t *timeline) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%s "+format+"\n", append([]any{t.stamp(time.Now())}, args...)...)
}

func (t *timeline) stamp(at time.Time) string { return fmt.Sprintf("[%6.1fs]", t.rel(at)) }

// rel is at in seconds since the start of the run.
func (t *timeline) rel(at time.Time) float64 { return at.Sub(t.start).Seconds() }

// events returns the events in time order (ties keep the order reported).
func (t *timeline) events() []event {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := slices.Clone(t.ev)
	slices.SortStableFunc(ev, func(a, b event) int { return a.At.Compare(b.At) })
	return ev
}

// print writes the whole timeline, in time order.
func (t *timeline) print() {
	ev := t.events()
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintln(t.out, "\ntimeline:")
	for _, e := range ev {
		fmt.Fprintf(t.out, "  %s %s\n", t.stamp(e.At), e.Text)
	}
}

// kinds returns the events' kinds in time order.
func kinds(ev []event) []kind {
	out := make([]kind, len(ev))
	for i, e := range ev {
		out[i] = e.Kind
	}
	return out
}

// syncWriter serialises writes from several goroutines (slog's handler
// and the timeline share stdout).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
