package drift

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/jsonfile"
)

// ProfileFormat names the profile's JSON format and its version; a profile
// file of another format is refused on load. Version 2 added the rare
// categories (FeatureProfile.Rare) and the multivariate reference
// (Profile.Multivariate); files of version 1, which have neither, still
// load.
const ProfileFormat = "servekit.drift.profile/v2"

// profileFormatV1 is the format before the data-quality and multivariate
// fields.
const profileFormatV1 = "servekit.drift.profile/v1"

// ProfileFileName is the name a profile takes beside its model version in a
// model repository: <repo>/<model>/<version>/drift_profile.json.
const ProfileFileName = "drift_profile.json"

// Limits a loaded profile must keep, so a hostile or corrupt file cannot
// make a monitor allocate without bound.
const (
	MaxFeatures   = 4096
	MaxEdges      = 1024
	MaxCategories = 10000
	MaxValues     = 100000
	// MaxRare is the most rare categories (those pooled in "other") a
	// profile lists so unseen ones can be told from them.
	MaxRare    = 10000
	maxNameLen = 1024
)

// Profile is the reference a model version's traffic is compared with: per
// feature, the distribution seen in training (or in the first live
// requests). It is what ships beside the model version as JSON. Build one
// with a ProfileBuilder; a Profile is immutable once built or loaded, and
// safe to share.
type Profile struct {
	Format string `json:"format"`
	Model  string `json:"model"`
	// Version is the model version the profile describes; empty means any
	// version of Model that has no profile of its own.
	Version  string           `json:"version"`
	Created  time.Time        `json:"created,omitzero"`
	Features []FeatureProfile `json:"features"`
	// Multivariate is the principal-component reference of the numerical
	// features together (WithMultivariate), or nil.
	Multivariate *PCA `json:"multivariate,omitempty"`
}

// FeatureProfile is one feature's reference distribution.
type FeatureProfile struct {
	Feature
	// Count is the number of reference values that enter the statistics
	// (for numerical features, the finite ones); Missing counts the NaN and
	// infinite values, which are left out.
	Count   int64 `json:"count"`
	Missing int64 `json:"missing"`

	// Numerical features. Edges are the fine bin edges: the reference's
	// percentiles 0, 1, …, 100 (NumPy's default interpolation) without
	// repeats, or, for a Discrete feature, its distinct values. Bin i holds
	// the values v with Edges[i-1] < v <= Edges[i]; bin 0 is everything up to
	// the minimum and the last bin everything above the maximum, so there
	// are len(Edges)+1 bins. Coarse lists the indices of the edges that
	// bound the coarse bins: the deciles (10, 20, …, 90), or every edge of a
	// Discrete feature. Sums is the sum of the values in each fine bin.
	// Values holds every reference value, sorted, when there are few enough
	// to keep (see WithValueLimit), for exact tests on small windows.
	Discrete bool      `json:"discrete,omitempty"`
	Mean     float64   `json:"mean,omitempty"`
	Std      float64   `json:"std,omitempty"`
	Min      float64   `json:"min,omitempty"`
	Max      float64   `json:"max,omitempty"`
	Edges    []float64 `json:"edges,omitempty"`
	Coarse   []int     `json:"coarse,omitempty"`
	Sums     []float64 `json:"sums,omitempty"`
	Values   []float64 `json:"values,omitempty"`

	// Categorical features: the categories kept, most frequent first, and
	// the rest (pooled in "other"), sorted, when there are at most MaxRare
	// of them: a value in neither was never seen in the reference. Rare is
	// nil when "other" is empty, or when it held too many to list (then no
	// value is called unseen).
	Categories []string `json:"categories,omitempty"`
	Rare       []string `json:"rare,omitempty"`

	// Counts is the number of reference values per fine bin (numerical) or
	// per category followed by the "other" bucket (categorical).
	Counts []int64 `json:"counts"`
}

// Feature returns the named feature's profile.
func (p *Profile) Feature(name string) (*FeatureProfile, bool) {
	for i := range p.Features {
		if p.Features[i].Name == name {
			return &p.Features[i], true
		}
	}
	return nil, false
}

func (p *Profile) String() string { return modelVersion(p.Model, p.Version) }

func modelVersion(model, version string) string {
	if version == "" {
		return fmt.Sprintf("%q (any version)", model)
	}
	return fmt.Sprintf("%q version %q", model, version)
}

// Encode writes the profile as indented JSON.
func (p *Profile) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(p)
}

// WriteFile writes the profile to path, through a temporary file renamed
// into place so a reader never sees half a profile.
func (p *Profile) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := p.Encode(&buf); err != nil {
		return fmt.Errorf("drift: encode profile %s: %w", p, err)
	}
	return writeFile(path, buf.Bytes())
}

// writeFile replaces the file at path whole (atomicfile: temp, fsync,
// rename, fsync of the directory).
func writeFile(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("drift: write %s: %w", path, err)
	}
	return nil
}

// DecodeProfile reads a profile from JSON and validates it: the format, the
// names, and that every count, edge and value agrees with the others, so a
// monitor never runs on an inconsistent reference. Unknown fields are
// refused, which catches misspelt keys in hand-edited files.
func DecodeProfile(r io.Reader) (*Profile, error) {
	return jsonfile.Decode[Profile](r, "drift", "profile")
}

// ReadProfile loads and validates the profile in the file at path.
func ReadProfile(path string) (*Profile, error) {
	return jsonfile.Read[Profile](path, "drift", "profile")
}

// ReadRepository loads every <dir>/<model>/<version>/drift_profile.json,
// the layout of a model repository, checking that each names the model and
// version its path does.
func ReadRepository(dir string) ([]*Profile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*", ProfileFileName))
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	var out []*Profile
	for _, path := range paths {
		p, err := ReadProfile(path)
		if err != nil {
			return nil, err
		}
		version := filepath.Base(filepath.Dir(path))
		model := filepath.Base(filepath.Dir(filepath.Dir(path)))
		if p.Model != model || p.Version != version {
			return nil, fmt.Errorf("drift: %s describes %s, not %s", path, p, modelVersion(model, version))
		}
		out = append(out, p)
	}
	return out, nil
}

// Fingerprint identifies the profile's content: snapshots record it, so
// states built on different bins are never merged.
func (p *Profile) Fingerprint() string {
	b, err := json.Marshal(p)
	if err != nil {
		return "" // unreachable for a validated profile: every float is finite
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Validate checks the profile's consistency; DecodeProfile calls it.
func (p *Profile) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("drift: profile %s: %s", p, fmt.Sprintf(format, args...))
	}
	if p.Format != ProfileFormat && p.Format != profileFormatV1 {
		return fmt.Errorf("drift: unsupported profile format %q, want %q", p.Format, ProfileFormat)
	}
	if p.Model == "" {
		return fail("no model name")
	}
	if len(p.Model) > maxNameLen || len(p.Version) > maxNameLen {
		return fail("model or version name longer than %d bytes", maxNameLen)
	}
	if len(p.Features) == 0 || len(p.Features) > MaxFeatures {
		return fail("%d features, want 1 to %d", len(p.Features), MaxFeatures)
	}
	seen := make(map[string]bool, len(p.Features))
	for i := range p.Features {
		f := &p.Features[i]
		if err := f.Feature.validate(); err != nil {
			return fail("feature %d: %v", i, err)
		}
		if seen[f.Name] {
			return fail("feature %q appears twice", f.Name)
		}
		seen[f.Name] = true
		if err := f.validate(); err != nil {
			return fail("feature %q: %v", f.Name, err)
		}
		if f.Rare != nil && p.Format == profileFormatV1 {
			return fail("feature %q: rare categories in a %s profile", f.Name, profileFormatV1)
		}
	}
	if p.Multivariate != nil {
		if p.Format == profileFormatV1 {
			return fail("a multivariate reference in a %s profile", profileFormatV1)
		}
		if err := p.Multivariate.validate(p); err != nil {
			return fail("multivariate: %v", err)
		}
	}
	return nil
}

func (f Feature) validate() error {
	switch {
	case f.Name == "":
		return errors.New("no name")
	case len(f.Name) > maxNameLen:
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	case f.Kind != Numerical && f.Kind != Categorical:
		return fmt.Errorf("%q: kind %q, want %q or %q", f.Name, f.Kind, Numerical, Categorical)
	case f.Source.Tensor == "":
		return fmt.Errorf("%q: no source tensor", f.Name)
	case f.Source.Column < 0:
		return fmt.Errorf("%q: negative column %d", f.Name, f.Source.Column)
	case f.Source.Argmax && !f.Source.Output:
		return fmt.Errorf("%q: argmax applies to outputs only", f.Name)
	case f.Source.Argmax && f.Kind != Categorical:
		return fmt.Errorf("%q: an argmax (a class) must be categorical", f.Name)
	}
	return nil
}

func (f *FeatureProfile) validate() error {
	if f.Count < 1 {
		return fmt.Errorf("count %d: a reference needs values", f.Count)
	}
	if f.Missing < 0 {
		return fmt.Errorf("missing count %d is negative", f.Missing)
	}
	if f.Kind == Categorical {
		return f.validateCategorical()
	}
	return f.validateNumerical()
}

func (f *FeatureProfile) validateCategorical() error {
	if f.Edges != nil || f.Coarse != nil || f.Sums != nil || f.Values != nil || f.Discrete {
		return errors.New("a categorical feature has no edges, coarse bins, sums, values or discrete flag")
	}
	if len(f.Categories) > MaxCategories {
		return fmt.Errorf("%d categories, more than %d", len(f.Categories), MaxCategories)
	}
	seen := make(map[string]bool, len(f.Categories))
	for _, c := range f.Categories {
		if seen[c] {
			return fmt.Errorf("category %q appears twice", c)
		}
		seen[c] = true
	}
	if err := checkCounts(f.Counts, len(f.Categories)+1, f.Count, "categories and other"); err != nil {
		return err
	}
	if f.Rare == nil {
		return nil
	}
	other := f.Counts[len(f.Categories)]
	if len(f.Rare) == 0 || len(f.Rare) > MaxRare || int64(len(f.Rare)) > other {
		return fmt.Errorf("%d rare categories for %d values in other, want 1 to %d and no more than the values", len(f.Rare), other, MaxRare)
	}
	if !slices.IsSorted(f.Rare) {
		return errors.New("rare categories must be sorted")
	}
	for i, c := range f.Rare {
		if seen[c] || i > 0 && c == f.Rare[i-1] {
			return fmt.Errorf("rare category %q appears twice, or among the kept ones", c)
		}
	}
	return nil
}

func (f *FeatureProfile) validateNumerical() error {
	if f.Categories != nil || f.Rare != nil {
		return errors.New("a numerical feature has no categories")
	}
	n := len(f.Edges)
	if n == 0 || n > MaxEdges {
		return fmt.Errorf("%d edges, want 1 to %d", n, MaxEdges)
	}
	for i, e := range f.Edges {
		if !finite(e) {
			return fmt.Errorf("edge %d is %v", i, e)
		}
		if i > 0 && e <= f.Edges[i-1] {
			return fmt.Errorf("edges not increasing at %d (%v after %v)", i, e, f.Edges[i-1])
		}
	}
	if err := checkCounts(f.Counts, n+1, f.Count, "bins"); err != nil {
		return err
	}
	if f.Counts[n] != 0 {
		return errors.New("reference values above the last edge: it must be the maximum")
	}
	if len(f.Sums) != n+1 {
		return fmt.Errorf("%d sums for %d bins", len(f.Sums), n+1)
	}
	for i, s := range f.Sums {
		if !finite(s) {
			return fmt.Errorf("sum %d is %v", i, s)
		}
	}
	for i, c := range f.Coarse {
		if c < 0 || c >= n || (i > 0 && c <= f.Coarse[i-1]) {
			return fmt.Errorf("coarse edge indices must increase within [0, %d): %v", n, f.Coarse)
		}
	}
	if f.Discrete && len(f.Coarse) != n {
		return errors.New("a discrete feature's coarse bins are its fine bins")
	}
	if f.Min != f.Edges[0] || f.Max != f.Edges[n-1] {
		return fmt.Errorf("min %v and max %v are not the first and last edges", f.Min, f.Max)
	}
	if !finite(f.Mean) || !finite(f.Std) || f.Std < 0 || f.Mean < f.Min || f.Mean > f.Max {
		return fmt.Errorf("mean %v or std %v out of range", f.Mean, f.Std)
	}
	if f.Values != nil {
		if int64(len(f.Values)) != f.Count || len(f.Values) > MaxValues {
			return fmt.Errorf("%d values for count %d (at most %d kept)", len(f.Values), f.Count, MaxValues)
		}
		if !slices.IsSorted(f.Values) || f.Values[0] != f.Min || f.Values[len(f.Values)-1] != f.Max {
			return errors.New("values must be sorted, from min to max")
		}
		for _, v := range f.Values {
			if !finite(v) {
				return fmt.Errorf("value %v is not finite", v)
			}
		}
	}
	return nil
}

func checkCounts(counts []int64, want int, total int64, what string) error {
	if len(counts) != want {
		return fmt.Errorf("%d counts for %d %s", len(counts), want, what)
	}
	var sum int64
	for i, c := range counts {
		if c < 0 {
			return fmt.Errorf("count %d is negative", i)
		}
		sum += c
		if sum < 0 {
			return errors.New("counts overflow")
		}
	}
	if sum != total {
		return fmt.Errorf("counts sum to %d, count says %d", sum, total)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
