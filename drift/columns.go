package drift

import (
	"strconv"

	"github.com/servekit/servekit/serving"
)

// MaxColumnsPerInput bounds the features FeaturesOf makes of one input: an
// input with more values per row (an image, an embedding) is not a table
// whose columns one watches one by one, and is left out.
const MaxColumnsPerInput = 64

// FeaturesOf lists the features to watch for a model, read from its
// metadata the way Evidently maps a DataFrame's columns:
//
//   - an input of one value per row ([N] or [N, 1]: skl2onnx's per-column
//     inputs) is the feature of its name;
//   - an input of k values per row ([N, k], up to MaxColumnsPerInput) is k
//     features name_0 … name_{k-1}, the names rowio gives a vector's CSV
//     columns, so a training CSV in the batch job's layout profiles as it
//     is (ProfileBuilder.ReadCSV);
//   - an output of one value per row is a feature of its name too: the
//     predicted label of a classifier, the value of a regressor (an output
//     whose name is an input's is named "output:"+name).
//
// Text (BYTES) and BOOL values are categorical, as Evidently treats string
// and boolean columns: a STRING column's values are its categories, never
// numbers to parse. Integer outputs of one value per row are categorical
// too, since a classifier's integer label is a class, not a quantity;
// integer inputs stay numerical (a count), and the profile treats one with
// at most 5 distinct values as discrete anyway. Everything else — scores
// per class, inputs of dynamic or higher-rank shape — is left out: choose
// those features by hand (Argmax, OutputColumn).
func FeaturesOf(md serving.Metadata) []Feature {
	var fs []Feature
	names := map[string]bool{}
	for _, in := range md.Inputs {
		w, ok := rowWidth(in.Shape)
		if !ok || w > MaxColumnsPerInput {
			continue
		}
		kind := kindOf(in.DataType, false)
		if w == 1 {
			fs = append(fs, Feature{Name: in.Name, Kind: kind, Source: Input(in.Name)})
			names[in.Name] = true
			continue
		}
		for c := range w {
			name := in.Name + "_" + strconv.Itoa(c)
			fs = append(fs, Feature{Name: name, Kind: kind, Source: InputColumn(in.Name, c)})
			names[name] = true
		}
	}
	for _, out := range md.Outputs {
		if w, ok := rowWidth(out.Shape); !ok || w != 1 {
			continue
		}
		name := out.Name
		if names[name] {
			name = "output:" + name
		}
		fs = append(fs, Feature{Name: name, Kind: kindOf(out.DataType, true), Source: Output(out.Name)})
	}
	return fs
}

// rowWidth is the number of values per row of a [N, ...] shape whose dims
// after the first are fixed.
func rowWidth(shape []int64) (int, bool) {
	if len(shape) == 0 || len(shape) > 2 {
		return 0, false
	}
	if len(shape) == 1 {
		return 1, true
	}
	if shape[1] < 1 {
		return 0, false
	}
	return int(shape[1]), true
}

func kindOf(dt serving.DataType, output bool) Kind {
	switch dt {
	case serving.Bytes, serving.Bool:
		return Categorical
	case serving.Int8, serving.Int16, serving.Int32, serving.Int64, serving.Uint8, serving.Uint16, serving.Uint32, serving.Uint64:
		if output {
			return Categorical
		}
	}
	return Numerical
}
