package scoring_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/servekit/servekit/beam/scoring"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func init() {
	// Workers find the model by this name: register loaders in init, which
	// runs on the launcher and on every worker alike. An ONNX model needs
	// no loader: scoring.Model{Path: "gs://models/fraud.onnx"}.
	scoring.RegisterLoader("example-linear", func(context.Context, scoring.Model) (serving.Predictor, error) {
		return servingtest.Linear(2), nil // y = 2x + 1
	})
	register.Function1x1(formatResult)
	register.Function1x1(formatFailure)
	register.Function2x0(printSorted)
	register.Iter1[string]()
}

func Example() {
	p, s := beam.NewPipelineWithRoot()
	rows := beam.Create(s,
		scoring.Row{Key: "t1", Inputs: map[string][]float64{"x": {1, 2}}},
		scoring.Row{Key: "t2", Inputs: map[string][]float64{"x": {3, 4}}},
		scoring.Row{Key: "t3", Inputs: map[string][]float64{"x": {5}}}, // one value short
	)
	results, failures := scoring.Score(s, rows, scoring.Model{Loader: "example-linear"})

	lines := beam.Flatten(s, beam.ParDo(s, formatResult, results), beam.ParDo(s, formatFailure, failures))
	beam.ParDo0(s, printSorted, beam.GroupByKey(s, beam.AddFixedKey(s, lines)))
	if _, err := prism.Execute(context.Background(), p); err != nil {
		fmt.Println(err)
	}
	// Output:
	// t1 scored by linear: y=[3 5]
	// t2 scored by linear: y=[7 9]
	// t3 failed: invalid_argument: input "x" takes 2 values per row (shape [2]), got 1
}

func formatResult(r scoring.Result) string {
	return fmt.Sprintf("%s scored by %s: y=%v", r.Key, r.Model, r.Outputs["y"])
}

func formatFailure(f scoring.Failure) string {
	return fmt.Sprintf("%s failed: %s: %s", f.Row.Key, f.Code, f.Reason)
}

func printSorted(_ int, lines func(*string) bool) {
	var all []string
	var l string
	for lines(&l) {
		all = append(all, l)
	}
	slices.Sort(all)
	fmt.Println(strings.Join(all, "\n"))
}
