package job

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// Summary reports a run.
type Summary struct {
	// Dir is where this run wrote (the shard's directory when sharded).
	Dir string
	// Rows were scored and written, Errors sent to the dead letters, by
	// this run; Parts committed by this run, SkippedParts by earlier ones.
	Rows, Errors        int64
	Parts, SkippedParts int
	Duration            time.Duration
	RowsPerSecond       float64
	// Complete is true when every part of the input (of this shard) is
	// committed.
	Complete bool
	// Outputs describe the distribution of each model output over this
	// run's rows (every element of a vector output).
	Outputs []OutputSummary
}

// OutputSummary is the distribution of one output.
type OutputSummary struct {
	Name           string
	Count          int64
	Min, Mean, Max float64
	P50, P90, P99  float64 // from a uniform sample of SampleSize values
	Histogram      []Bin   // 10 equal bins over [Min, Max], scaled from the sample
	// Classes counts each value of an integer, boolean or text output
	// while it has at most MaxClasses distinct values; nil past that.
	Classes map[string]int64
}

// Bin is a histogram bin: Count values in [Lo, Hi).
type Bin struct {
	Lo, Hi float64
	Count  int64
}

// SampleSize and MaxClasses bound the memory of a summary, however many
// rows a job has.
const (
	SampleSize = 10000
	MaxClasses = 32
)

func (j *run) summary() *Summary {
	f := j.tr.read()
	s := &Summary{Dir: j.dir, Rows: f.rows, Errors: f.failed, Parts: int(j.tr.parts.Load()),
		SkippedParts: len(j.man.Parts) - int(j.tr.parts.Load()), Duration: f.elapsed, RowsPerSecond: f.rate, Complete: j.man.Complete}
	for _, name := range j.stats.order {
		s.Outputs = append(s.Outputs, j.stats.byName[name].summary(name))
	}
	return s
}

// String renders the summary as a few lines of text.
func (s *Summary) String() string {
	var b strings.Builder
	state := "complete"
	if !s.Complete {
		state = "incomplete"
	}
	fmt.Fprintf(&b, "%d rows scored, %d failed, in %v (%.0f rows/s); %d parts written, %d done before; %s; output %s\n",
		s.Rows, s.Errors, s.Duration.Round(time.Millisecond), s.RowsPerSecond, s.Parts, s.SkippedParts, state, s.Dir)
	for _, o := range s.Outputs {
		fmt.Fprintf(&b, "output %s: n=%d min=%.4g mean=%.4g max=%.4g p50=%.4g p90=%.4g p99=%.4g\n",
			o.Name, o.Count, o.Min, o.Mean, o.Max, o.P50, o.P90, o.P99)
		if len(o.Classes) > 0 {
			keys := make([]string, 0, len(o.Classes))
			for k := range o.Classes {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "  %-12s %d\n", k, o.Classes[k])
			}
			continue
		}
		var top int64
		for _, h := range o.Histogram {
			top = max(top, h.Count)
		}
		for _, h := range o.Histogram {
			bar := 0
			if top > 0 {
				bar = int(40 * h.Count / top)
			}
			fmt.Fprintf(&b, "  [%9.4g, %9.4g) %-40s %d\n", h.Lo, h.Hi, strings.Repeat("#", bar), h.Count)
		}
	}
	return b.String()
}

// stats accumulates output distributions; the writer goroutine owns it.
type stats struct {
	order  []string
	byName map[string]*outStats
	rng    *rand.Rand
	skip   map[string]bool // columns that are not outputs
}

type outStats struct {
	count         int64
	min, max, sum float64
	sample        []float64
	classes       map[string]int64
	numeric       bool
	// Once the sample is full, next is the index (in the output's value
	// stream) of the next value to enter it and w the weight of Li's
	// Algorithm L: the random draws are per value that enters, not per
	// value seen, so sampling costs the writer nothing per row.
	next    int64
	w       float64
	scratch []float64
}

// add counts the output columns of an output frame: all but the row
// number, the keys (skip) and model, version and timestamp.
func (s *stats) add(f *rowio.Frame) {
	if s.byName == nil {
		s.byName, s.rng = map[string]*outStats{}, rand.New(rand.NewPCG(1, 2))
	}
	for _, c := range f.Cols {
		if s.skip[c.Name] {
			continue
		}
		o := s.byName[c.Name]
		if o == nil {
			o = &outStats{min: math.Inf(1), max: math.Inf(-1), classes: map[string]int64{}}
			s.byName[c.Name] = o
			s.order = append(s.order, c.Name)
		}
		o.addCol(c, s.rng)
	}
}

func (o *outStats) addCol(c rowio.Col, rng *rand.Rand) {
	switch d := c.Data.(type) {
	case []float32:
		addFloats(o, d, rng)
		return
	case []float64:
		addFloats(o, d, rng)
		return
	}
	t, err := serving.FromSlice(c.Name, c.Type, []int64{int64(c.Len() * max(1, c.Width))}, c.Data)
	if err != nil {
		return
	}
	n := t.Len()
	if strs, _ := t.Strings(); strs != nil {
		o.count += int64(n)
		for _, s := range strs {
			o.class(s)
		}
		return
	}
	o.scratch = o.scratch[:0]
	for i := range n {
		v, _ := t.Float64At(i)
		o.scratch = append(o.scratch, v)
		if c.Type != serving.FP16 && c.Type != serving.BF16 {
			o.class(strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	addFloats(o, o.scratch, rng)
}

// addFloats counts numeric values: their range and sum, and a uniform
// sample of SampleSize of them (every value has the same chance to be in
// it, as with Algorithm R, which drew a number per value).
func addFloats[T float32 | float64](o *outStats, d []T, rng *rand.Rand) {
	if len(d) == 0 {
		return
	}
	o.numeric = true
	lo, hi, sum := o.min, o.max, 0.0
	for _, x := range d {
		v := float64(x)
		lo, hi, sum = min(lo, v), max(hi, v), sum+v
	}
	o.min, o.max, o.sum = lo, hi, o.sum+sum
	start := o.count
	o.count += int64(len(d))
	i := 0
	for ; len(o.sample) < SampleSize && i < len(d); i++ {
		o.sample = append(o.sample, float64(d[i]))
		if len(o.sample) == SampleSize {
			o.w = math.Exp(math.Log(uniform(rng)) / SampleSize)
			o.next = start + int64(i) + o.skip(rng)
		}
	}
	for o.next < o.count && len(o.sample) == SampleSize {
		o.sample[rng.IntN(SampleSize)] = float64(d[o.next-start])
		o.w *= math.Exp(math.Log(uniform(rng)) / SampleSize)
		o.next += o.skip(rng)
	}
}

// skip is how far the next value to enter the sample is from the last.
func (o *outStats) skip(rng *rand.Rand) int64 {
	s := math.Floor(math.Log(uniform(rng))/math.Log1p(-o.w)) + 1
	if s > math.MaxInt64/2 || math.IsNaN(s) {
		return math.MaxInt64 / 2
	}
	return int64(s)
}

// uniform draws from (0, 1].
func uniform(rng *rand.Rand) float64 { return 1 - rng.Float64() }

func (o *outStats) class(k string) {
	if o.classes == nil {
		return
	}
	o.classes[k]++
	if len(o.classes) > MaxClasses {
		o.classes = nil
	}
}

func (o *outStats) summary(name string) OutputSummary {
	s := OutputSummary{Name: name, Count: o.count, Classes: o.classes}
	if len(s.Classes) == 0 {
		s.Classes = nil
	}
	if !o.numeric || o.count == 0 {
		return s
	}
	s.Min, s.Max, s.Mean = o.min, o.max, o.sum/float64(o.count)
	sorted := slices.Sorted(slices.Values(o.sample))
	q := func(p float64) float64 { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	s.P50, s.P90, s.P99 = q(0.5), q(0.9), q(0.99)
	const bins = 10
	width := (s.Max - s.Min) / bins
	counts := make([]int64, bins)
	for _, v := range sorted {
		i := bins - 1
		if width > 0 {
			i = min(bins-1, int((v-s.Min)/width))
		}
		counts[i]++
	}
	for i, c := range counts {
		s.Histogram = append(s.Histogram, Bin{Lo: s.Min + float64(i)*width, Hi: s.Min + float64(i+1)*width,
			Count: int64(math.Round(float64(c) * float64(o.count) / float64(len(sorted))))})
	}
	return s
}
