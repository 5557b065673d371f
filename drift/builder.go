package drift

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/servekit/servekit/drift/internal/stats"
	"github.com/servekit/servekit/serving"
)

// Defaults of a ProfileBuilder.
const (
	// DefaultMaxCategories is how many of a categorical feature's most
	// frequent reference values are kept exactly; the rest share "other".
	DefaultMaxCategories = 50
	// DefaultValueLimit is the most reference values of a numerical feature
	// a profile keeps, for exact tests on small windows: Evidently's switch
	// between small and large samples.
	DefaultValueLimit = 1000
	// discreteLimit is the most distinct values a numerical feature may have
	// to be treated as discrete (its bins are its values), as Evidently
	// treats a numerical column with at most 5 unique values.
	discreteLimit = 5
	fineBins      = 100 // percentiles
	coarseStep    = 10  // every 10th percentile: deciles
)

// ProfileOption configures a ProfileBuilder.
type ProfileOption interface{ applyProfile(*profileConfig) }

type profileConfig struct {
	maxCategories int
	valueLimit    int
	multivariate  float64 // the variance share kept; 0: no multivariate reference
	now           func() time.Time
}

type profileOptionFunc func(*profileConfig)

func (f profileOptionFunc) applyProfile(c *profileConfig) { f(c) }

// WithMaxCategories sets how many of a categorical feature's most frequent
// values are kept exactly (default DefaultMaxCategories, at most
// MaxCategories); less frequent ones are pooled in "other".
func WithMaxCategories(n int) ProfileOption {
	return profileOptionFunc(func(c *profileConfig) { c.maxCategories = n })
}

// WithValueLimit sets the most reference values of a numerical feature the
// profile keeps (default DefaultValueLimit, at most MaxValues); a reference
// with more keeps only its histogram. 0 keeps none.
func WithValueLimit(n int) ProfileOption {
	return profileOptionFunc(func(c *profileConfig) { c.valueLimit = n })
}

// WithMultivariate adds a multivariate reference to the profile: the
// principal axes of the numerical features (standardised) that explain
// more than share of their variance (0: DefaultVarianceShare), and the
// spread of the reference rows' reconstruction errors, which the
// monitor's multivariate check compares each window with. It needs two
// numerical features or more, added row by row: every feature gets one
// value (or a missing one) per row, as ReadCSV, ReadJSONL and AddRequest
// add them.
func WithMultivariate(share float64) ProfileOption {
	return profileOptionFunc(func(c *profileConfig) {
		if share == 0 {
			share = DefaultVarianceShare
		}
		c.multivariate = share
	})
}

// ProfileBuilder accumulates reference values and builds a Profile. It keeps
// every numerical value until Profile is called (percentiles need them all),
// so it is meant for training sets, not for unbounded streams. It is not
// safe for concurrent use.
type ProfileBuilder struct {
	model, version string
	features       []Feature
	index          map[string]int
	cfg            profileConfig
	nums           [][]float64        // per feature: finite values (numerical)
	cats           []map[string]int64 // per feature: counts (categorical)
	missing        []int64
	rows           int64
	mvCols         [][]float64 // per feature: every value in order, NaN when missing (multivariate)
}

// NewProfileBuilder starts a profile of the given features for a model
// version (version "" for any version of the model).
func NewProfileBuilder(model, version string, features []Feature, opts ...ProfileOption) (*ProfileBuilder, error) {
	cfg := profileConfig{maxCategories: DefaultMaxCategories, valueLimit: DefaultValueLimit, now: time.Now}
	for _, o := range opts {
		o.applyProfile(&cfg)
	}
	if cfg.maxCategories < 1 || cfg.maxCategories > MaxCategories {
		return nil, serving.Errorf(serving.InvalidArgument, "drift: max categories %d, want 1 to %d", cfg.maxCategories, MaxCategories)
	}
	if cfg.multivariate != 0 && !(cfg.multivariate > 0 && cfg.multivariate <= 1) {
		return nil, serving.Errorf(serving.InvalidArgument, "drift: multivariate variance share %v, want (0, 1]", cfg.multivariate)
	}
	if cfg.valueLimit < 0 || cfg.valueLimit > MaxValues {
		return nil, serving.Errorf(serving.InvalidArgument, "drift: value limit %d, want 0 to %d", cfg.valueLimit, MaxValues)
	}
	if model == "" {
		return nil, serving.Errorf(serving.InvalidArgument, "drift: a profile needs a model name")
	}
	if len(features) == 0 || len(features) > MaxFeatures {
		return nil, serving.Errorf(serving.InvalidArgument, "drift: %d features, want 1 to %d", len(features), MaxFeatures)
	}
	b := &ProfileBuilder{
		model: model, version: version, features: slices.Clone(features), cfg: cfg,
		index:   make(map[string]int, len(features)),
		nums:    make([][]float64, len(features)),
		cats:    make([]map[string]int64, len(features)),
		missing: make([]int64, len(features)),
	}
	if cfg.multivariate > 0 {
		b.mvCols = make([][]float64, len(features))
	}
	for i, f := range features {
		if err := f.validate(); err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "drift: feature %d: %v", i, err)
		}
		if _, dup := b.index[f.Name]; dup {
			return nil, serving.Errorf(serving.InvalidArgument, "drift: feature %q appears twice", f.Name)
		}
		b.index[f.Name] = i
		if f.Kind == Categorical {
			b.cats[i] = map[string]int64{}
		}
	}
	return b, nil
}

func (b *ProfileBuilder) feature(name string) (int, error) {
	i, ok := b.index[name]
	if !ok {
		return 0, serving.Errorf(serving.InvalidArgument, "drift: no feature %q in the profile of %s", name, modelVersion(b.model, b.version))
	}
	return i, nil
}

// Add records a value of a feature. A categorical feature takes the
// value's shortest decimal form as its category ("3", "0.5"); a NaN or
// infinite value of a numerical feature is counted as missing.
func (b *ProfileBuilder) Add(feature string, v float64) error {
	i, err := b.feature(feature)
	if err != nil {
		return err
	}
	b.addNumber(i, v)
	return nil
}

func (b *ProfileBuilder) addNumber(i int, v float64) {
	if b.features[i].Kind == Categorical {
		b.cats[i][formatNumber(v)]++
		return
	}
	if b.mvCols != nil {
		b.mvCols[i] = append(b.mvCols[i], v)
	}
	if !finite(v) {
		b.missing[i]++
		return
	}
	b.nums[i] = append(b.nums[i], v)
}

// addMissing counts a missing value.
func (b *ProfileBuilder) addMissing(i int) {
	b.missing[i]++
	if b.mvCols != nil && b.features[i].Kind == Numerical {
		b.mvCols[i] = append(b.mvCols[i], math.NaN())
	}
}

// AddCategory records a categorical value. For a numerical feature the
// value is parsed as a number; "" is missing.
func (b *ProfileBuilder) AddCategory(feature, v string) error {
	i, err := b.feature(feature)
	if err != nil {
		return err
	}
	return b.addString(i, v)
}

func (b *ProfileBuilder) addString(i int, v string) error {
	if b.features[i].Kind == Categorical {
		b.cats[i][v]++
		return nil
	}
	if v == "" {
		b.addMissing(i)
		return nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return serving.Errorf(serving.InvalidArgument, "drift: feature %q: %q is not a number", b.features[i].Name, v)
	}
	b.addNumber(i, x)
	return nil
}

// AddMissing records a missing value (an empty cell, a null).
func (b *ProfileBuilder) AddMissing(feature string) error {
	i, err := b.feature(feature)
	if err != nil {
		return err
	}
	b.addMissing(i)
	return nil
}

// AddRequest records the features of one answered request, read from its
// tensors by each feature's Source: the way to profile recorded traffic.
func (b *ProfileBuilder) AddRequest(req *serving.Request, resp *serving.Response) error {
	ex, err := compileExtractors(b.features, nil)
	if err != nil {
		return err
	}
	rows, err := ex.rows(req, resp)
	if err != nil {
		return err
	}
	vals := make([]float64, rows)
	strs := make([]string, rows)
	for i, e := range ex {
		if b.features[i].Kind == Categorical {
			e.strings(req, resp, rows, strs)
			for _, s := range strs {
				b.cats[i][s]++
			}
			continue
		}
		e.numbers(req, resp, rows, vals)
		for _, v := range vals {
			b.addNumber(i, v)
		}
	}
	b.rows += int64(rows)
	return nil
}

// Profile builds the profile from what was added. The builder may go on
// collecting afterwards.
func (b *ProfileBuilder) Profile() (*Profile, error) {
	var err error
	p := &Profile{Format: ProfileFormat, Model: b.model, Version: b.version, Created: b.cfg.now().UTC().Truncate(time.Second)}
	for i, f := range b.features {
		var fp FeatureProfile
		var err error
		if f.Kind == Categorical {
			fp, err = categoricalProfile(f, b.cats[i], b.cfg.maxCategories)
		} else {
			fp, err = numericalProfile(f, b.nums[i], b.cfg.valueLimit)
		}
		if err != nil {
			return nil, fmt.Errorf("drift: profile %s: %w", p, err)
		}
		fp.Missing = b.missing[i]
		p.Features = append(p.Features, fp)
	}
	if b.mvCols != nil {
		if p.Multivariate, err = b.multivariate(); err != nil {
			return nil, fmt.Errorf("drift: profile %s: %w", p, err)
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err // a bug here, not bad input: report it rather than ship it
	}
	return p, nil
}

// multivariate fits the multivariate reference to the rows added.
func (b *ProfileBuilder) multivariate() (*PCA, error) {
	var names []string
	var cols [][]float64
	for i, f := range b.features {
		if f.Kind == Numerical {
			names = append(names, f.Name)
			cols = append(cols, b.mvCols[i])
		}
	}
	if len(cols) < 2 {
		return nil, fmt.Errorf("a multivariate reference needs two numerical features or more, the profile has %d", len(cols))
	}
	for j, c := range cols {
		if len(c) != len(cols[0]) {
			return nil, fmt.Errorf("a multivariate reference needs rows: feature %q has %d values, %q %d", names[j], len(c), names[0], len(cols[0]))
		}
	}
	rows := make([][]float64, len(cols[0]))
	for r := range rows {
		rows[r] = make([]float64, len(cols))
		for j, c := range cols {
			rows[r][j] = c[r]
		}
	}
	return fitPCA(names, rows, b.cfg.multivariate)
}

func numericalProfile(f Feature, values []float64, valueLimit int) (FeatureProfile, error) {
	fp := FeatureProfile{Feature: f, Count: int64(len(values))}
	if len(values) == 0 {
		return fp, fmt.Errorf("feature %q has no finite values", f.Name)
	}
	x := slices.Clone(values)
	slices.Sort(x)
	distinct := slices.Compact(slices.Clone(x))
	if len(distinct) <= discreteLimit {
		fp.Discrete = true
		fp.Edges = distinct
		fp.Coarse = make([]int, len(distinct))
		for i := range fp.Coarse {
			fp.Coarse[i] = i
		}
	} else {
		qs := make([]float64, fineBins+1)
		for k := range qs {
			qs[k] = stats.Quantile(x, float64(k)/fineBins)
		}
		fp.Edges = slices.Compact(slices.Clone(qs))
		for k := coarseStep; k < fineBins; k += coarseStep {
			j, _ := slices.BinarySearch(fp.Edges, qs[k])
			if len(fp.Coarse) == 0 || fp.Coarse[len(fp.Coarse)-1] != j {
				fp.Coarse = append(fp.Coarse, j)
			}
		}
	}
	fp.Counts = make([]int64, len(fp.Edges)+1)
	fp.Sums = make([]float64, len(fp.Edges)+1)
	var sum float64
	for _, v := range x {
		bin := binOf(fp.Edges, v)
		fp.Counts[bin]++
		fp.Sums[bin] += v
		sum += v
	}
	n := float64(len(x))
	fp.Min, fp.Max = x[0], x[len(x)-1]
	// Rounding can put the mean of equal values a hair outside them.
	fp.Mean = min(max(sum/n, fp.Min), fp.Max)
	var ss float64
	for _, v := range x {
		d := v - fp.Mean
		ss += d * d
	}
	fp.Std = math.Sqrt(ss / n) // population std, as np.std and Evidently
	if len(x) <= valueLimit {
		fp.Values = x
	}
	return fp, nil
}

func categoricalProfile(f Feature, counts map[string]int64, maxCategories int) (FeatureProfile, error) {
	fp := FeatureProfile{Feature: f}
	type kv struct {
		k string
		n int64
	}
	all := make([]kv, 0, len(counts))
	for k, n := range counts {
		all = append(all, kv{k, n})
		fp.Count += n
	}
	if fp.Count == 0 {
		return fp, fmt.Errorf("feature %q has no values", f.Name)
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
	keep := min(len(all), maxCategories)
	fp.Categories = make([]string, keep)
	fp.Counts = make([]int64, keep+1)
	for i, c := range all {
		if i < keep {
			fp.Categories[i] = c.k
			fp.Counts[i] = c.n
		} else {
			fp.Counts[keep] += c.n
		}
	}
	if rest := all[keep:]; len(rest) > 0 && len(rest) <= MaxRare {
		fp.Rare = make([]string, len(rest))
		for i, c := range rest {
			fp.Rare[i] = c.k
		}
		slices.Sort(fp.Rare)
	}
	return fp, nil
}

// binOf is the fine bin of v: the number of edges below it, found by
// binary search without a closure (this runs once per observed value).
func binOf(edges []float64, v float64) int {
	lo, hi := 0, len(edges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if edges[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
