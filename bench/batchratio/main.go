// Command batchratio summarises batch benchmark output read from stdin.
//
// BenchmarkBatchInterleaved (batch/bench_test.go) is the comparison to
// trust: the two sides of each cell take turns in slices within one run
// (AB BA AB …), so neither the order nor a load that moves over the run
// favours one, and each cell has an A/A control (unbatched against
// itself, interleaved the same way). For each model and caller count it
// prints the batched/unbatched ratio of rows/s (each run's b/a, the
// median of its pairs of slices) as min, median and max over the rounds
// (-count), the control's ratio the same way beside it, and the CPU time
// per row, unbatched over batched (above 1: batching costs less per
// request), and each side's median p99. A
// batched ratio whose range lies within the control's is no loss and no
// win; a verdict column says where it lies wholly below (loss) or above
// (win) the control's, given three rounds or more.
//
//	go test -run '^$' -bench 'BatchInterleaved' -benchtime 2s -count 3 ./batch | go run ./bench/batchratio
//
// BenchmarkBatch output is summarised as before: the n-th batched line
// against the n-th unbatched line of the same cell, which ran one after
// the other (unbatched first, so the order and the load's drift are in
// its ratio), as min, median and max over the rounds, with the median
// rows/s and p99 of each, and the CPU ratio.
//
//	go test -run '^$' -bench 'BenchmarkBatch$' -count 3 ./batch | go run ./bench/batchratio
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// line matches "BenchmarkBatch/MODEL/cN/MODE-P  N  X ns/op  ... V unit ...",
// and interleaved "BenchmarkBatchInterleaved/MODEL/cN/(batched|control)-P ...".
var (
	line        = regexp.MustCompile(`^BenchmarkBatch/([^/]+)/c(\d+)/([a-z0-9-]+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	interleaved = regexp.MustCompile(`^BenchmarkBatchInterleaved/([^/]+)/c(\d+)/(batched|control)(?:-\d+)?\s+\d+\s+(.*)$`)
)

type cell struct {
	model string
	conc  int
}

type run struct{ rowsPerSec, p99, cpu float64 }

// turn is one interleaved run: b over a's rows/s, a's CPU per row over
// b's, and each side's p99.
type turn struct{ ratio, cpu, p99a, p99b float64 }

func main() {
	if err := summarise(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "batchratio:", err)
		os.Exit(1)
	}
}

func summarise(in io.Reader, out io.Writer) error {
	runs := map[cell]map[string][]run{}
	turns := map[cell]map[string][]turn{}
	var order, iorder []cell
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if m := interleaved.FindStringSubmatch(sc.Text()); m != nil {
			conc, _ := strconv.Atoi(m[2])
			c := cell{m[1], conc}
			if turns[c] == nil {
				turns[c] = map[string][]turn{}
				iorder = append(iorder, c)
			}
			turns[c][m[3]] = append(turns[c][m[3]], turn{metric(m[4], "b/a"), metric(m[4], "a-cpu/b-cpu"),
				metric(m[4], "a-p99-µs"), metric(m[4], "b-p99-µs")})
			continue
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		conc, _ := strconv.Atoi(m[2])
		c := cell{m[1], conc}
		if runs[c] == nil {
			runs[c] = map[string][]run{}
			order = append(order, c)
		}
		runs[c][m[3]] = append(runs[c][m[3]], run{metric(m[4], "rows/s"), metric(m[4], "p99-µs"), metric(m[4], "cpu-µs/row")})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(iorder) > 0 {
		summariseInterleaved(out, iorder, turns)
	}
	if len(order) == 0 {
		return nil
	}
	fmt.Fprintf(out, "%-7s %5s  %-24s  %12s %12s  %-24s  %11s %11s\n", "model", "calls", "batched/unbatched rows/s",
		"unbatched", "batched", "unbatched/batched CPU", "p99 unb.", "p99 bat.")
	for _, c := range order {
		u, b := runs[c]["unbatched"], runs[c]["batched"]
		n := min(len(u), len(b))
		if n == 0 {
			continue
		}
		var ratios, cpus, ur, br, up, bp []float64
		for i := range n {
			ratios = append(ratios, b[i].rowsPerSec/u[i].rowsPerSec)
			if b[i].cpu > 0 {
				cpus = append(cpus, u[i].cpu/b[i].cpu)
			}
			ur, br = append(ur, u[i].rowsPerSec), append(br, b[i].rowsPerSec)
			up, bp = append(up, u[i].p99), append(bp, b[i].p99)
		}
		cpu := "-"
		if len(cpus) > 0 {
			cpu = fmt.Sprintf("%5.2f× %5.2f× %5.2f×", slices.Min(cpus), median(cpus), slices.Max(cpus))
		}
		fmt.Fprintf(out, "%-7s %5d  %5.2f× %5.2f× %5.2f×     %10.0f/s %10.0f/s  %-24s  %8.0f µs %8.0f µs\n",
			c.model, c.conc, slices.Min(ratios), median(ratios), slices.Max(ratios),
			median(ur), median(br), cpu, median(up), median(bp))
	}
	return nil
}

// metric finds "VALUE UNIT" in a benchmark line's measurements.
func metric(s, unit string) float64 {
	f := strings.Fields(s)
	for i := 1; i < len(f); i++ {
		if f[i] == unit {
			v, _ := strconv.ParseFloat(f[i-1], 64)
			return v
		}
	}
	return 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summariseInterleaved prints BenchmarkBatchInterleaved's cells: the
// batched ratio and the control's, each min, median and max over the
// rounds, and a verdict: "loss" where even the batched maximum is below
// the control's minimum, "win" where the batched minimum is above the
// control's maximum, "noise" otherwise; "-" with fewer than three rounds
// of either, too few to bound the noise.
func summariseInterleaved(out io.Writer, order []cell, turns map[cell]map[string][]turn) {
	fmt.Fprintf(out, "%-7s %5s  %-24s  %-24s  %-7s  %-24s  %11s %11s\n", "model", "calls",
		"batched/unbatched rows/s", "control (A/A) rows/s", "verdict", "unbatched/batched CPU", "p99 unb.", "p99 bat.")
	for _, c := range order {
		b, a := turns[c]["batched"], turns[c]["control"]
		if len(b) == 0 {
			continue
		}
		pick := func(ts []turn, f func(turn) float64) []float64 {
			var v []float64
			for _, t := range ts {
				v = append(v, f(t))
			}
			return v
		}
		ratios := pick(b, func(t turn) float64 { return t.ratio })
		span := func(v []float64) string {
			if len(v) == 0 {
				return "-"
			}
			return fmt.Sprintf("%5.2f× %5.2f× %5.2f×", slices.Min(v), median(v), slices.Max(v))
		}
		verdict := "-"
		if len(a) >= 3 && len(b) >= 3 {
			ctl := pick(a, func(t turn) float64 { return t.ratio })
			switch {
			case slices.Max(ratios) < slices.Min(ctl):
				verdict = "loss"
			case slices.Min(ratios) > slices.Max(ctl):
				verdict = "win"
			default:
				verdict = "noise"
			}
		}
		fmt.Fprintf(out, "%-7s %5d  %-24s  %-24s  %-7s  %-24s  %8.0f µs %8.0f µs\n", c.model, c.conc,
			span(ratios), span(pick(a, func(t turn) float64 { return t.ratio })), verdict,
			span(pick(b, func(t turn) float64 { return t.cpu })),
			median(pick(b, func(t turn) float64 { return t.p99a })), median(pick(b, func(t turn) float64 { return t.p99b })))
	}
}
