// Package beamtest is what the module's tests share: running pipelines on
// prism inside the test process, and the repository's demo model.
package beamtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/servekit/servekit/serving"
	"go.uber.org/goleak"
)

// Main is a TestMain for packages whose tests run pipelines with
// prism.Execute: quiet logs, Beam initialised, and no goroutine left
// behind but prism's own job server, which is started once per process,
// serves every pipeline of the run and has no stop.
func Main(m *testing.M) {
	beamlog.LogLevel = "warn" // prism logs every job's progress at INFO
	beam.Init()
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal/jobservices.(*Server).Serve"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc.(*Server).Serve"),
	)
}

// FraudModel returns the absolute path of testdata/models/fraud.onnx,
// found upward from the working directory, as workers would read it.
func FraudModel(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	for err == nil {
		p := filepath.Join(dir, "testdata", "models", "fraud.onnx")
		if _, serr := os.Stat(p); serr == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatal("no testdata/models/fraud.onnx above the working directory")
	return ""
}

// FraudAlone is the demo model's score for one row of 8 features, asked
// directly: the answer a pipeline must reproduce.
func FraudAlone(t testing.TB, m serving.Predictor, x []float32) float64 {
	t.Helper()
	in, err := serving.NewTensor("features", []int64{1, 8}, x)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := serving.Values[float32](resp.Outputs[0])
	if err != nil || len(s) != 1 {
		t.Fatalf("fraud score %v, %v", resp.Outputs, err)
	}
	return float64(s[0])
}
