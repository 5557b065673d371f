package drift_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
)

func TestProfileNumerical(t *testing.T) {
	b, err := drift.NewProfileBuilder("m", "1", []drift.Feature{drift.NumericalFeature("x", drift.Input("x"))})
	require.NoError(t, err)
	for i := 1; i <= 1000; i++ {
		require.NoError(t, b.Add("x", float64(i)))
	}
	require.NoError(t, b.Add("x", math.NaN()))
	require.NoError(t, b.Add("x", math.Inf(1)))
	p, err := b.Profile()
	require.NoError(t, err)
	f := p.Features[0]
	assert.Equal(t, int64(1000), f.Count)
	assert.Equal(t, int64(2), f.Missing)
	assert.False(t, f.Discrete)
	require.Len(t, f.Edges, 101)
	assert.Equal(t, 1.0, f.Edges[0])
	assert.Equal(t, 10.99, f.Edges[1]) // numpy.quantile(range(1, 1001), 0.01)
	assert.Equal(t, 1000.0, f.Edges[100])
	assert.Equal(t, []int{10, 20, 30, 40, 50, 60, 70, 80, 90}, f.Coarse)
	assert.Equal(t, int64(1), f.Counts[0]) // the minimum, alone in bin 0
	assert.Equal(t, int64(0), f.Counts[101])
	assert.Equal(t, 500.5, f.Mean)
	assert.InDelta(t, 288.6749902572095, f.Std, 1e-9)
	assert.Len(t, f.Values, 1000, "a reference within the value limit is kept whole")

	b, _ = drift.NewProfileBuilder("m", "1", []drift.Feature{drift.NumericalFeature("x", drift.Input("x"))}, drift.WithValueLimit(999))
	for i := 1; i <= 1000; i++ {
		require.NoError(t, b.Add("x", float64(i)))
	}
	p, err = b.Profile()
	require.NoError(t, err)
	assert.Nil(t, p.Features[0].Values)
}

func TestProfileDiscreteAndCategorical(t *testing.T) {
	b, err := drift.NewProfileBuilder("m", "", []drift.Feature{
		drift.NumericalFeature("flag", drift.InputColumn("x", 0)),
		drift.CategoricalFeature("country", drift.Input("country")),
	}, drift.WithMaxCategories(2))
	require.NoError(t, err)
	for i, c := range []string{"fr", "de", "fr", "it", "fr", "de", "es"} {
		require.NoError(t, b.Add("flag", float64(i%2)))
		require.NoError(t, b.AddCategory("country", c))
	}
	p, err := b.Profile()
	require.NoError(t, err)
	flag, _ := p.Feature("flag")
	assert.True(t, flag.Discrete)
	assert.Equal(t, []float64{0, 1}, flag.Edges)
	assert.Equal(t, []int64{4, 3, 0}, flag.Counts)
	country, _ := p.Feature("country")
	assert.Equal(t, []string{"fr", "de"}, country.Categories)
	assert.Equal(t, []int64{3, 2, 2}, country.Counts, "it and es share other")
}

// The same rows read from CSV and JSON Lines make the same profile.
func TestProfileFromFiles(t *testing.T) {
	fs := []drift.Feature{
		drift.NumericalFeature("amount", drift.InputColumn("features", 0)),
		drift.CategoricalFeature("channel", drift.Input("channel")),
	}
	var csv, jsonl strings.Builder
	csv.WriteString("id,amount,channel\n")
	for i := range 300 {
		amount, channel := fmt.Sprint(float64(i%37)*1.5), []string{"web", "app", "pos"}[i%3]
		if i%50 == 0 {
			amount = ""
		}
		fmt.Fprintf(&csv, "%d,%s,%s\n", i, amount, channel)
		if amount == "" {
			fmt.Fprintf(&jsonl, "{\"amount\": null, \"channel\": %q}\n", channel)
		} else {
			fmt.Fprintf(&jsonl, "{\"amount\": %s, \"channel\": %q, \"id\": %d}\n", amount, channel, i)
		}
	}
	b1, _ := drift.NewProfileBuilder("m", "1", fs)
	require.NoError(t, b1.ReadCSV(strings.NewReader(csv.String())))
	b2, _ := drift.NewProfileBuilder("m", "1", fs)
	require.NoError(t, b2.ReadJSONL(strings.NewReader(jsonl.String())))
	p1, err := b1.Profile()
	require.NoError(t, err)
	p2, err := b2.Profile()
	require.NoError(t, err)
	p2.Created = p1.Created
	assert.Equal(t, p1, p2)
	assert.Equal(t, int64(6), p1.Features[0].Missing)
	assert.Equal(t, int64(294), p1.Features[0].Count)

	bad := []struct{ name, csv, jsonl, want string }{
		{"missing column", "id,channel\n1,web\n", "", `no column "amount"`},
		{"not a number", "amount,channel\n1,web\nabc,app\n", "", `"abc" is not a number (CSV line 3)`},
		{"wrong type", "", "{\"amount\": 1, \"channel\": \"web\"}\n{\"amount\": true}\n", `bool is not a numerical value (JSONL row 2)`},
		{"bad json", "", "{\"amount\": 1}\n{\"amount\": \n", `JSONL row 2`},
	}
	for _, c := range bad {
		b, _ := drift.NewProfileBuilder("m", "1", fs)
		var err error
		if c.csv != "" {
			err = b.ReadCSV(strings.NewReader(c.csv))
		} else {
			err = b.ReadJSONL(strings.NewReader(c.jsonl))
		}
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
}

func TestProfileRoundTrip(t *testing.T) {
	p := referenceProfile(t, 500)
	dir := t.TempDir()
	path := filepath.Join(dir, "linear", "1", drift.ProfileFileName)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, p.WriteFile(path))
	q, err := drift.ReadProfile(path)
	require.NoError(t, err)
	assert.Equal(t, p, q)
	assert.Equal(t, p.Fingerprint(), q.Fingerprint())
	all, err := drift.ReadRepository(dir)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, p, all[0])

	// A profile in the wrong version's folder is refused.
	wrong := filepath.Join(dir, "linear", "2", drift.ProfileFileName)
	require.NoError(t, os.MkdirAll(filepath.Dir(wrong), 0o755))
	require.NoError(t, p.WriteFile(wrong))
	_, err = drift.ReadRepository(dir)
	assert.ErrorContains(t, err, `not "linear" version "2"`)
}

// Every inconsistency a hand edit or a corrupt file could bring is refused
// with a message that names it.
func TestProfileValidation(t *testing.T) {
	p := referenceProfile(t, 500)
	var buf bytes.Buffer
	require.NoError(t, p.Encode(&buf))
	good := buf.String()
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(good), &m))
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	feat := func(m map[string]any, i int) map[string]any { return m["features"].([]any)[i].(map[string]any) }
	cases := []struct{ name, json, want string }{
		{"format", edit(func(m map[string]any) { m["format"] = "servekit.drift.profile/v9" }), `unsupported profile format "servekit.drift.profile/v9"`},
		{"no model", edit(func(m map[string]any) { m["model"] = "" }), "no model name"},
		{"no features", edit(func(m map[string]any) { m["features"] = []any{} }), "0 features"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"duplicate", edit(func(m map[string]any) { feat(m, 1)["name"] = "a" }), `feature "a" appears twice`},
		{"kind", edit(func(m map[string]any) { feat(m, 0)["kind"] = "text" }), `kind "text"`},
		{"edges", edit(func(m map[string]any) {
			e := feat(m, 0)["edges"].([]any)
			e[3], e[4] = e[4], e[3]
		}), "edges not increasing at 4"},
		{"counts", edit(func(m map[string]any) { feat(m, 0)["counts"].([]any)[5] = 1e6 }), "counts sum to"},
		{"negative", edit(func(m map[string]any) { feat(m, 0)["counts"].([]any)[5] = -1 }), "count 5 is negative"},
		{"bins", edit(func(m map[string]any) { feat(m, 0)["counts"] = []any{500} }), "1 counts for 102 bins"},
		{"coarse", edit(func(m map[string]any) { feat(m, 0)["coarse"] = []any{20, 10} }), "coarse edge indices"},
		{"values", edit(func(m map[string]any) { feat(m, 0)["values"] = []any{1, 2} }), "2 values for count 500"},
		{"argmax input", edit(func(m map[string]any) { feat(m, 0)["source"] = map[string]any{"tensor": "x", "argmax": true} }), "argmax applies to outputs only"},
		{"trailing", good + "{}", "data after the profile"},
		{"not json", "{", "unexpected EOF"},
	}
	for _, c := range cases {
		_, err := drift.DecodeProfile(strings.NewReader(c.json))
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
		}
	}
	_, err := drift.DecodeProfile(strings.NewReader(good))
	assert.NoError(t, err)
}
