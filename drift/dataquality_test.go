package drift_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
)

// dqProfile: amount, a number in [0, 99]; country, of which the profile
// keeps the two most frequent and lists the three rare ones.
func dqProfile(t *testing.T) *drift.Profile {
	t.Helper()
	pb, err := drift.NewProfileBuilder("m", "1", []drift.Feature{
		drift.NumericalFeature("amount", drift.Input("amount")),
		drift.CategoricalFeature("country", drift.Input("country")),
	}, drift.WithMaxCategories(2))
	require.NoError(t, err)
	for i := range 1000 {
		require.NoError(t, pb.Add("amount", float64(i%100)))
		c := []string{"fr", "de"}[i%2]
		if i%50 == 0 {
			c = []string{"es", "it", "pt"}[i/50%3]
		}
		require.NoError(t, pb.AddCategory("country", c))
	}
	p, err := pb.Profile()
	require.NoError(t, err)
	return p
}

// send posts rows of amount (text, as a CSV or form would give it) and
// country.
func send(t *testing.T, p serving.Predictor, amounts, countries []string) {
	t.Helper()
	a, err := serving.NewStrings("amount", []int64{int64(len(amounts))}, amounts)
	require.NoError(t, err)
	c, err := serving.NewStrings("country", []int64{int64(len(countries))}, countries)
	require.NoError(t, err)
	_, err = p.Predict(context.Background(), &serving.Request{Model: "m", Version: "1", Inputs: []serving.Tensor{a, c}})
	require.NoError(t, err)
}

// Every window counts, per feature, what was wrong with its values: NaN,
// ±Inf, text that is no number, values outside the reference's range, and
// countries the reference never had (a rare one it had is not unseen);
// each check's share is judged against the reference's plus the
// tolerance, and two windows in breach raise the alarm, which Status.Err
// reports as a data-quality one.
func TestDataQualityChecks(t *testing.T) {
	prof := dqProfile(t)
	fp, _ := prof.Feature("country")
	assert.Equal(t, []string{"de", "fr"}, fp.Categories)
	assert.Equal(t, []string{"es", "it", "pt"}, fp.Rare)
	var alerts []drift.Alert
	m := newMonitor(t, drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(200, 0)),
		drift.WithAlertFunc(func(a drift.Alert) { alerts = append(alerts, a) }))
	p := m.Middleware()(echo)
	bad := func() {
		var amounts, countries []string
		for i := range 200 {
			a, c := fmt.Sprint(i%100), []string{"fr", "de"}[i%2]
			switch i % 20 {
			case 1:
				a = "NaN"
			case 2:
				a = "+Inf"
			case 3:
				a = "12,5" // a decimal comma: not a number
			case 4:
				a = "250" // above the reference's maximum of 99
			case 5:
				a = "-1"
			case 6:
				c = "xx" // never seen
			case 7:
				c = "pt" // rare, but seen
			case 8:
				a = "" // missing
			}
			amounts, countries = append(amounts, a), append(countries, c)
		}
		send(t, p, amounts, countries)
	}
	bad()
	flush(t, m)
	r := m.Results("m", "1")[0]
	amount, _ := r.Feature("amount")
	q := amount.Quality
	require.NotNil(t, q)
	assert.Equal(t, drift.DataQuality{Values: 200, NaN: 20, Inf: 10, Mismatched: 10, Below: 10, Above: 10, Checks: q.Checks}, *q)
	rate := func(q *drift.DataQuality, c drift.Check) drift.CheckRate {
		r, ok := q.Rate(c)
		require.True(t, ok, c)
		return r
	}
	assert.Equal(t, 0.2, rate(q, drift.CheckMissing).Rate, "NaN, ±Inf, mismatched and empty: 40 of 200")
	assert.Equal(t, 0.05, rate(q, drift.CheckMismatched).Rate)
	assert.Equal(t, 20.0/160, rate(q, drift.CheckOutOfRange).Rate, "of the finite values")
	for _, c := range []drift.Check{drift.CheckMissing, drift.CheckMismatched, drift.CheckOutOfRange} {
		assert.True(t, rate(q, c).Breach, c)
	}
	country, _ := r.Feature("country")
	assert.Equal(t, int64(10), country.Quality.Unseen)
	assert.Equal(t, 0.05, rate(country.Quality, drift.CheckUnseen).Rate)
	assert.Empty(t, r.Checks, "one window in breach: not yet an alarm")

	bad()
	flush(t, m)
	st := m.Status("m", "1")
	assert.ElementsMatch(t, []string{"amount: missing", "amount: mismatched", "amount: out_of_range", "country: unseen"}, st.Checks)
	require.ErrorIs(t, st.Err(), drift.ErrDataQuality)
	assert.Contains(t, st.Reason, "amount: missing 20% > 1%")
	require.NotEmpty(t, alerts)
	assert.ElementsMatch(t, st.Checks, alerts[len(alerts)-1].CheckRaised)

	// Three clean windows clear them.
	for range 3 {
		var amounts, countries []string
		for i := range 200 {
			amounts, countries = append(amounts, fmt.Sprint(i%100)), append(countries, []string{"fr", "de", "it"}[i%3])
		}
		send(t, p, amounts, countries)
	}
	flush(t, m)
	assert.Empty(t, m.Status("m", "1").Checks)
	assert.ElementsMatch(t, []string{"amount: missing", "amount: mismatched", "amount: out_of_range", "country: unseen"}, alerts[len(alerts)-1].CheckCleared)
}

// A categorical profile that pooled more categories than it can list
// calls nothing unseen; one of format v1 (before rare categories) still
// loads.
func TestUnseenNeedsTheWholeReference(t *testing.T) {
	pb, err := drift.NewProfileBuilder("m", "1", []drift.Feature{drift.CategoricalFeature("c", drift.Input("c"))}, drift.WithMaxCategories(1))
	require.NoError(t, err)
	for i := range drift.MaxRare + 2 {
		require.NoError(t, pb.AddCategory("c", fmt.Sprint(i)))
	}
	p, err := pb.Profile()
	require.NoError(t, err)
	assert.Nil(t, p.Features[0].Rare, "too many to list")

	var buf bytes.Buffer
	require.NoError(t, dqProfile(t).Encode(&buf))
	v1 := strings.Replace(buf.String(), drift.ProfileFormat, "servekit.drift.profile/v1", 1)
	_, err = drift.DecodeProfile(strings.NewReader(v1))
	assert.ErrorContains(t, err, "rare categories in a servekit.drift.profile/v1 profile")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(v1), &doc))
	for _, f := range doc["features"].([]any) {
		delete(f.(map[string]any), "rare")
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	old, err := drift.DecodeProfile(bytes.NewReader(b))
	require.NoError(t, err, "a v1 profile loads")
	m := newMonitor(t, drift.WithProfile(old), drift.WithWindow(drift.CountWindow(100, 0)))
	pr := m.Middleware()(echo)
	send(t, pr, strings.Split(strings.Repeat("1,", 100), ",")[:100], strings.Split(strings.Repeat("xx,", 100), ",")[:100])
	flush(t, m)
	country, _ := m.Results("m", "1")[0].Feature("country")
	_, checked := country.Quality.Rate(drift.CheckUnseen)
	assert.False(t, checked, "without the rare categories, nothing can be called unseen")
}
