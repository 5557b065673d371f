package drift

import (
	"math"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// extractor reads one feature's values out of a request and its response.
// It runs on the request path, so it reads typed slices directly and
// resolves categories to their index without allocating.
type extractor struct {
	f     Feature
	cat   map[string]int32 // category -> index; nil when learning
	other int32            // the "other" bucket's index
	// rare holds the reference's categories pooled in "other"; a value in
	// neither cat nor rare was never seen (index other+1). nil when the
	// profile does not know them all: no value is then called unseen.
	rare map[string]bool
}

type extractors []extractor

func compileExtractors(features []Feature, fps []FeatureProfile) (extractors, error) {
	ex := make(extractors, len(features))
	for i, f := range features {
		ex[i].f = f
		if fps != nil && f.Kind == Categorical {
			fp := fps[i]
			ex[i].cat = make(map[string]int32, len(fp.Categories))
			for j, c := range fp.Categories {
				ex[i].cat[c] = int32(j)
			}
			ex[i].other = int32(len(fp.Categories))
			if fp.Counts[len(fp.Categories)] == 0 || fp.Rare != nil {
				ex[i].rare = make(map[string]bool, len(fp.Rare))
				for _, c := range fp.Rare {
					ex[i].rare[c] = true
				}
			}
		}
	}
	return ex, nil
}

func (e *extractor) tensor(req *serving.Request, resp *serving.Response) (serving.Tensor, bool) {
	if e.f.Source.Output {
		if resp == nil {
			return serving.Tensor{}, false
		}
		return resp.Output(e.f.Source.Tensor)
	}
	return req.Input(e.f.Source.Tensor)
}

// view reads a tensor as rows × width.
func view(t serving.Tensor) (rows, width int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	width = 1
	for _, d := range t.Shape[1:] {
		width *= int(d)
	}
	return int(t.Shape[0]), width
}

// rows checks that every feature's tensor is there, has the column asked
// for and the same number of rows as the others, and returns that number.
func (ex extractors) rows(req *serving.Request, resp *serving.Response) (int, error) {
	rows := -1
	for i := range ex {
		e := &ex[i]
		t, ok := e.tensor(req, resp)
		if !ok {
			return 0, serving.Errorf(serving.InvalidArgument, "drift: feature %q: no %s", e.f.Name, e.f.Source)
		}
		r, w := view(t)
		if r < 0 || w < 0 || t.Len() != r*w {
			return 0, serving.Errorf(serving.InvalidArgument, "drift: feature %q: tensor %q is malformed", e.f.Name, t.Name)
		}
		if e.f.Source.Argmax && w < 1 || !e.f.Source.Argmax && e.f.Source.Column >= w {
			return 0, serving.Errorf(serving.InvalidArgument, "drift: feature %q: %s, but rows of %q have %d values",
				e.f.Name, e.f.Source, t.Name, w)
		}
		if rows >= 0 && r != rows {
			return 0, serving.Errorf(serving.InvalidArgument, "drift: feature %q: %d rows, other features have %d", e.f.Name, r, rows)
		}
		rows = r
	}
	return max(rows, 0), nil
}

// numbers writes the feature's value of each row to dst (len rows); a value
// that is not a number (text that does not parse) is the mismatch NaN,
// counted as missing and mismatched; empty text is missing.
func (e *extractor) numbers(req *serving.Request, resp *serving.Response, rows int, dst []float64) {
	t, _ := e.tensor(req, resp)
	_, w := view(t)
	c := e.f.Source.Column
	switch d := t.Data().(type) {
	case []float32:
		for r := range dst[:rows] {
			dst[r] = float64(d[r*w+c])
		}
	case []float64:
		for r := range dst[:rows] {
			dst[r] = d[r*w+c]
		}
	case []int64:
		for r := range dst[:rows] {
			dst[r] = float64(d[r*w+c])
		}
	case []int32:
		for r := range dst[:rows] {
			dst[r] = float64(d[r*w+c])
		}
	case [][]byte:
		for r := range dst[:rows] {
			b := d[r*w+c]
			v, err := strconv.ParseFloat(string(b), 64)
			switch {
			case len(b) == 0:
				v = math.NaN()
			case err != nil:
				v = mismatch
			}
			dst[r] = v
		}
	default:
		for r := range dst[:rows] {
			v, ok := t.Float64At(r*w + c)
			if !ok {
				v = math.NaN()
			}
			dst[r] = v
		}
	}
}

// argmax is the position of row r's largest value; NaNs are passed over,
// ties go to the first.
func argmax(t serving.Tensor, r, w int) int {
	best, at := math.Inf(-1), 0
	for j := range w {
		if v, ok := t.Float64At(r*w + j); ok && v > best {
			best, at = v, j
		}
	}
	return at
}

// key appends row r's categorical key to buf: the string of a BYTES value,
// the decimal form of a number, true/false, or the argmax position.
func (e *extractor) key(buf []byte, t serving.Tensor, r, w int) []byte {
	if e.f.Source.Argmax {
		return strconv.AppendInt(buf, int64(argmax(t, r, w)), 10)
	}
	i := r*w + e.f.Source.Column
	switch d := t.Data().(type) {
	case [][]byte:
		return append(buf, d[i]...)
	case []bool:
		return strconv.AppendBool(buf, d[i])
	case []int64:
		return strconv.AppendInt(buf, d[i], 10)
	case []int32:
		return strconv.AppendInt(buf, int64(d[i]), 10)
	case []float32, []float64:
		v, _ := t.Float64At(i)
		return strconv.AppendFloat(buf, v, 'g', -1, 64)
	}
	v, _ := t.Float64At(i)
	if t.DataType == serving.FP16 || t.DataType == serving.BF16 {
		return strconv.AppendFloat(buf, v, 'g', -1, 64)
	}
	return strconv.AppendInt(buf, int64(v), 10)
}

// indices writes each row's category index (the "other" bucket for a value
// the profile does not know) to dst, without allocating.
func (e *extractor) indices(req *serving.Request, resp *serving.Response, rows int, dst []int32) {
	t, _ := e.tensor(req, resp)
	_, w := view(t)
	var arr [64]byte
	for r := range dst[:rows] {
		k := e.key(arr[:0], t, r, w)
		switch i, ok := e.cat[string(k)]; {
		case ok:
			dst[r] = i
		case e.rare != nil && !e.rare[string(k)]:
			dst[r] = e.other + 1 // never seen in the reference
		default:
			dst[r] = e.other
		}
	}
}

// strings writes each row's category as a string (learning a profile).
func (e *extractor) strings(req *serving.Request, resp *serving.Response, rows int, dst []string) {
	t, _ := e.tensor(req, resp)
	_, w := view(t)
	var arr [64]byte
	for r := range dst[:rows] {
		dst[r] = string(e.key(arr[:0], t, r, w))
	}
}
