// Command batchratio summarises BenchmarkBatch output (batch/bench_test.go)
// read from stdin: for each model and caller count, the ratio of batched to
// unbatched rows/s in each round (the n-th batched line against the n-th
// unbatched line of the same cell, which ran side by side), as min, median
// and max over the rounds, with the median rows/s and p99 of each; and the
// ratio of CPU time per row, unbatched over batched (above 1: batching
// costs less per request).
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

// line matches "BenchmarkBatch/MODEL/cN/MODE-P  N  X ns/op  ... V unit ...".
var line = regexp.MustCompile(`^BenchmarkBatch/([^/]+)/c(\d+)/([a-z0-9-]+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type cell struct {
	model string
	conc  int
}

type run struct{ rowsPerSec, p99, cpu float64 }

func main() {
	if err := summarise(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "batchratio:", err)
		os.Exit(1)
	}
}

func summarise(in io.Reader, out io.Writer) error {
	runs := map[cell]map[string][]run{}
	var order []cell
	sc := bufio.NewScanner(in)
	for sc.Scan() {
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
