package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/beam/internal/beamtest"
	"github.com/servekit/servekit/beam/scoring"
	"github.com/servekit/servekit/internal/orttest"
)

func TestMain(m *testing.M) { beamtest.Main(m) }

func TestParseJSONL(t *testing.T) {
	fn := &jsonlFn{Key: "id"}
	for _, tc := range []struct {
		line string
		want scoring.Row
		err  string
	}{
		{`{"id": "a", "x": [1, 2.5], "s": "hi"}`, scoring.Row{Key: "a", Inputs: map[string][]float64{"x": {1, 2.5}}, Strings: map[string][]string{"s": {"hi"}}}, ""},
		{`{"id": 17, "x": [[1, 2], [3, 4]], "flag": true}`, scoring.Row{Key: "17", Inputs: map[string][]float64{"x": {1, 2, 3, 4}, "flag": {1}}}, ""},
		{`{"id": "e", "x": []}`, scoring.Row{Key: "e", Inputs: map[string][]float64{"x": {}}}, ""},
		{`{"x": [1]}`, scoring.Row{}, `no key field "id"`},
		{`{"id": {"a": 1}}`, scoring.Row{}, `key field "id" is not a string or a number`},
		{`{"id": "a", "x": [1, "b"]}`, scoring.Row{}, `field "x" mixes numbers and strings`},
		{`{"id": "a", "x": [1, null]}`, scoring.Row{}, `field "x": null is not a value`},
		{`{"id": "a", "x": {"y": 1}}`, scoring.Row{}, `field "x": an object is not a model input (list the input fields in --inputs)`},
		{`[1, 2]`, scoring.Row{}, "not a JSON object"},
	} {
		got, err := fn.parse(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	// --inputs keeps the fields listed, so other columns can ride along
	fn = &jsonlFn{Key: "id", Inputs: []string{"x"}}
	got, err := fn.parse(`{"id": "a", "x": [1], "label": {"not": "an input"}}`)
	if err != nil || len(got.Inputs) != 1 || got.Strings != nil {
		t.Errorf("with --inputs=x: %+v, %v", got, err)
	}
}

func TestParseCSV(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.csv"), "id,f1,note,f2\n")
	ctx := context.Background()
	fn, err := newCSVFn(ctx, &config{input: filepath.Join(dir, "*.csv"), key: "id", columns: []string{"f2", "f1"}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []scoring.Row
	var bad []string
	emit := func(r scoring.Row) { rows = append(rows, r) }
	fail := func(s string) { bad = append(bad, s) }
	for _, line := range []string{"id,f1,note,f2", `r1,1.5,"a, quoted note",-2`, "r2,1,x", "r3,abc,x,1", "", "r4, 3 ,x,4\r"} {
		fn.ProcessElement(line, emit, fail)
	}
	want := []scoring.Row{
		{Key: "r1", Inputs: map[string][]float64{"": {-2, 1.5}}},
		{Key: "r4", Inputs: map[string][]float64{"": {4, 3}}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %+v, want %+v", rows, want)
	}
	if len(bad) != 2 || !strings.Contains(bad[0], "3 fields, the header has 4") || !strings.Contains(bad[1], `column \"f1\": \"abc\" is not a number`) {
		t.Errorf("dead letters %q", bad)
	}
	for _, c := range []config{
		{input: filepath.Join(dir, "*.csv"), key: "nope"},
		{input: filepath.Join(dir, "*.csv"), key: "id", columns: []string{"f3"}},
		{input: filepath.Join(dir, "none-*.csv"), key: "id"},
	} {
		if _, err := newCSVFn(ctx, &c); err == nil {
			t.Errorf("newCSVFn(%+v): no error", c)
		}
	}
}

func TestFormatKeepsNonFinite(t *testing.T) {
	line := resultJSON(scoring.Result{Key: "k", Model: "m", Outputs: map[string][]float64{"y": {math.NaN(), math.Inf(1), math.Inf(-1), 0.1, 1e-7}}, Strings: map[string][]string{"l": {`"q"`}}})
	want := `{"key":"k","model":"m","outputs":{"y":["NaN","Infinity","-Infinity",0.1,1e-07]},"strings":{"l":["\"q\""]}}`
	if line != want || !json.Valid([]byte(line)) {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

// TestScoreFiles runs the command's pipeline on prism over JSONL and CSV
// files with the demo model, and checks the files it writes.
func TestScoreFiles(t *testing.T) {
	orttest.Require(t)
	model := beamtest.FraudModel(t)
	ref, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()

	rng := rand.New(rand.NewPCG(5, 6))
	const n = 500
	features := make(map[string][]float32, n)
	var jsonl, csvText strings.Builder
	csvText.WriteString("id,amount,hour,merchant_risk,distance_from_home,txn_count_24h,account_age,card_present,foreign\n")
	for i := range n {
		key := fmt.Sprintf("t%d", i)
		x := make([]float32, 8)
		var cells []string
		for j := range x {
			x[j] = float32(rng.NormFloat64())
			cells = append(cells, fmt.Sprint(x[j]))
		}
		features[key] = x
		b, _ := json.Marshal(map[string]any{"id": key, "features": x})
		fmt.Fprintf(&jsonl, "%s\n", b)
		fmt.Fprintf(&csvText, "%s,%s\n", key, strings.Join(cells, ","))
	}
	jsonl.WriteString("{oops\n{\"id\": \"short\", \"features\": [1, 2]}\n")
	csvText.WriteString("short,1,2\nbad,1,2,3,4,5,6,7,x\n")

	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			text := jsonl.String()
			if format == "csv" {
				text = csvText.String()
			}
			write(t, filepath.Join(dir, "in."+format), text)
			c := &config{
				input:        filepath.Join(dir, "in."+format),
				output:       filepath.Join(dir, "scores.jsonl"),
				key:          "id",
				model:        scoring.Model{Path: model, Version: "3"},
				maxBatchRows: 64,
			}
			p, s := beam.NewPipelineWithRoot()
			if err := build(context.Background(), s, c); err != nil {
				t.Fatal(err)
			}
			if _, err := prism.Execute(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			if c.failures != filepath.Join(dir, "scores.failures.jsonl") {
				t.Errorf("failures written to %s", c.failures)
			}
			seen := map[string]bool{}
			for _, line := range readLines(t, c.output) {
				var r struct {
					Key, Model, Version string
					Outputs             map[string][]float64
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if seen[r.Key] {
					t.Errorf("row %s scored twice", r.Key)
				}
				seen[r.Key] = true
				if want := beamtest.FraudAlone(t, ref, features[r.Key]); r.Model != "fraud" || r.Version != "3" || len(r.Outputs["score"]) != 1 || r.Outputs["score"][0] != want {
					t.Errorf("%s, want fraud v3 score %v as Predict gives it", line, want)
				}
			}
			if len(seen) != n {
				t.Errorf("%d rows scored, want %d", len(seen), n)
			}
			failures := readLines(t, c.failures)
			if len(failures) != 2 {
				t.Fatalf("dead letters %q, want the 2 bad lines", failures)
			}
			all := strings.Join(failures, "\n")
			for _, want := range []string{`"key":"short","code":"invalid_argument","reason":"input \"features\" takes 8 values per row`, `"line":`} {
				if format == "csv" && strings.HasPrefix(want, `"key":"short"`) {
					want = `"line":"short,1,2"` // a CSV line with missing fields never becomes a row
				}
				if !strings.Contains(all, want) {
					t.Errorf("dead letters %q lack %s", failures, want)
				}
			}
		})
	}
}

func write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
