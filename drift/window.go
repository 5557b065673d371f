package drift

import (
	"fmt"
	"time"
)

// MaxPanes bounds how many panes a sliding window is cut into (size over
// step), since each pane holds its own state.
const MaxPanes = 64

// WindowSpec says how traffic is cut into windows: by rows or by time,
// tumbling (each window new traffic) or sliding (each window the last size
// rows or the last size duration, evaluated every step). A sliding window
// is kept as size/step panes, so step must divide size.
type WindowSpec struct {
	rows, rowStep int64
	dur, durStep  time.Duration
}

// CountWindow evaluates windows of rows rows, every step rows (step 0 or
// equal to rows: tumbling).
func CountWindow(rows, step int) WindowSpec {
	if step == 0 {
		step = rows
	}
	return WindowSpec{rows: int64(rows), rowStep: int64(step)}
}

// TimeWindow evaluates windows of duration d, every step (step 0 or equal
// to d: tumbling). Windows start at multiples of step from the monitor's
// start, and a record belongs to the window in which the monitor's worker
// takes it in (milliseconds after its request). A window with no traffic
// is not evaluated.
func TimeWindow(d, step time.Duration) WindowSpec {
	if step == 0 {
		step = d
	}
	return WindowSpec{dur: d, durStep: step}
}

func (w WindowSpec) timed() bool { return w.dur > 0 }

func (w WindowSpec) panes() int {
	if w.timed() {
		return int(w.dur / w.durStep)
	}
	return int(w.rows / w.rowStep)
}

func (w WindowSpec) validate() error {
	switch {
	case (w.rows > 0) == (w.dur > 0):
		return invalid("window %v: set rows or a duration", w)
	case w.rows > 0 && (w.rowStep <= 0 || w.rowStep > w.rows || w.rows%w.rowStep != 0):
		return invalid("window %v: the step must divide the size", w)
	case w.dur > 0 && (w.durStep <= 0 || w.durStep > w.dur || w.dur%w.durStep != 0):
		return invalid("window %v: the step must divide the duration", w)
	case w.panes() > MaxPanes:
		return invalid("window %v: %d panes, at most %d", w, w.panes(), MaxPanes)
	}
	return nil
}

func (w WindowSpec) String() string {
	switch {
	case w.rows > 0 && w.rowStep == w.rows:
		return fmt.Sprintf("tumbling %d rows", w.rows)
	case w.rows > 0:
		return fmt.Sprintf("sliding %d rows every %d", w.rows, w.rowStep)
	case w.dur > 0 && w.durStep == w.dur:
		return fmt.Sprintf("tumbling %v", w.dur)
	case w.dur > 0:
		return fmt.Sprintf("sliding %v every %v", w.dur, w.durStep)
	}
	return "no window"
}
