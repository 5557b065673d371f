package main

import (
	"strings"
	"testing"
)

func TestSummariseInterleaved(t *testing.T) {
	// Three rounds of one cell: the batched ratios lie wholly below the
	// control's for fraud, within them for conv.
	var in strings.Builder
	for _, r := range []struct{ fraud, fraudCtl, conv, convCtl string }{
		{"0.80", "0.97", "0.95", "0.90"},
		{"0.85", "1.02", "1.00", "1.05"},
		{"0.90", "1.04", "1.02", "1.00"},
	} {
		in.WriteString("BenchmarkBatchInterleaved/fraud/c8/batched-2 \t 10\t 2e+08 ns/op\t 1.5 a-cpu/b-cpu\t 20 a-p99-µs\t 1 a-rows/s\t 30 b-p99-µs\t 1 b-rows/s\t " + r.fraud + " b/a\n")
		in.WriteString("BenchmarkBatchInterleaved/fraud/c8/control-2 \t 10\t 2e+08 ns/op\t 1 a-cpu/b-cpu\t 20 a-p99-µs\t 1 a-rows/s\t 20 b-p99-µs\t 1 b-rows/s\t " + r.fraudCtl + " b/a\n")
		in.WriteString("BenchmarkBatchInterleaved/conv/c8/batched-2 \t 10\t 2e+08 ns/op\t 1 a-cpu/b-cpu\t 20 a-p99-µs\t 1 a-rows/s\t 20 b-p99-µs\t 1 b-rows/s\t " + r.conv + " b/a\n")
		in.WriteString("BenchmarkBatchInterleaved/conv/c8/control-2 \t 10\t 2e+08 ns/op\t 1 a-cpu/b-cpu\t 20 a-p99-µs\t 1 a-rows/s\t 20 b-p99-µs\t 1 b-rows/s\t " + r.convCtl + " b/a\n")
	}
	var out strings.Builder
	if err := summarise(strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want a header and 2 cells:\n%s", len(lines), out.String())
	}
	for _, want := range []struct{ prefix, ratios, verdict string }{
		{"fraud       8", " 0.80×  0.85×  0.90×", "loss"},
		{"conv        8", " 0.95×  1.00×  1.02×", "noise"},
	} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want.prefix) {
				found = true
				if !strings.Contains(l, want.ratios) || !strings.Contains(l, " "+want.verdict+" ") {
					t.Errorf("%q: want ratios %q and verdict %q", l, want.ratios, want.verdict)
				}
			}
		}
		if !found {
			t.Errorf("no line for %q in\n%s", want.prefix, out.String())
		}
	}
}
