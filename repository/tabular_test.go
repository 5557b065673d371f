package repository_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

// A scikit-learn classifier exported with ZipMap, in a repository whose
// config.pbtxt lists its outputs as Triton's would, keeps the class labels
// the model carries: the configuration reshapes nothing, so the
// classification extension still reports them.
func TestTabularConfigKeepsLabels(t *testing.T) {
	orttest.Require(t)
	b, err := os.ReadFile(tabulartest.Find(t, "logreg_str_zipmap").Path)
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string]string{
		"tiers/1/model.onnx": string(b),
		"tiers/config.pbtxt": `name: "tiers" platform: "onnxruntime_onnx" max_batch_size: 16
input [ { name: "float_input" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "output_label" data_type: TYPE_STRING dims: [ 1 ] reshape { shape: [ ] } },
         { name: "output_probability" data_type: TYPE_FP32 dims: [ 3 ] } ]`,
	})
	r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := states(r, "tiers"); got != "1:ready" {
		t.Fatalf("tiers: %s (%+v)", got, r.Status())
	}
	rt, _ := r.Router("tiers")
	md, _ := serving.MetadataOf(rt)
	p, _ := md.Output("output_probability")
	if !slices.Equal(p.Labels, []string{"bronze", "gold", "silver"}) || !slices.Equal(p.Shape, []int64{-1, 3}) {
		t.Errorf("output_probability as clients see it: %+v", p)
	}
}
