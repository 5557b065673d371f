// Command predict loads the demo fraud model and scores a few example card
// transactions, printing a table. Run it from the repository root:
//
//	go run ./examples/predict [-model testdata/models/fraud.onnx]
//
// ONNX Runtime is found as backend/onnx documents ($ONNXRUNTIME_LIB, or
// third_party/onnxruntime/ after scripts/install-onnxruntime.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// txn is one transaction, its features already scaled as the model expects
// (see onnxbuild.FraudFeatures).
type txn struct {
	desc     string
	features [8]float32
}

var txns = []txn{
	{"coffee, chip, near home", [8]float32{-1.2, 0.35, 0.1, -0.9, -0.3, 1.1, 1, 0}},
	{"groceries, contactless", [8]float32{-0.2, 0.75, 0.2, -0.6, 0.1, 0.8, 1, 0}},
	{"online electronics", [8]float32{1.4, 0.95, 0.7, 0.4, 0.8, 0.2, 0, 0}},
	{"jewellery abroad, no card", [8]float32{2.3, 0.13, 0.9, 2.1, 2.0, -0.9, 0, 1}},
	{"hotel abroad, chip", [8]float32{1.1, 0.6, 0.4, 2.4, 0.2, 1.3, 1, 1}},
	{"new account, gift cards", [8]float32{1.8, 0.09, 0.95, 0.9, 2.8, -1.8, 0, 0}},
}

func main() {
	model := flag.String("model", "testdata/models/fraud.onnx", "path of the fraud ONNX model")
	flag.Parse()
	if err := run(*model); err != nil {
		log.SetFlags(0)
		log.Fatal(err)
	}
}

func run(path string) error {
	m, err := onnx.Load(path, onnx.WithVersion("1"), onnx.WithWarmup(1))
	if err != nil {
		return err
	}
	defer m.Close()
	md := m.Metadata()
	fmt.Printf("model %s (%s): input %s %v%v, output %s %v%v\n\n", md.Name, md.Platform,
		md.Inputs[0].Name, md.Inputs[0].DataType, md.Inputs[0].Shape,
		md.Outputs[0].Name, md.Outputs[0].DataType, md.Outputs[0].Shape)

	x := make([]float32, 0, 8*len(txns))
	for _, t := range txns {
		x = append(x, t.features[:]...)
	}
	in, err := serving.NewTensor("features", []int64{int64(len(txns)), 8}, x)
	if err != nil {
		return err
	}
	resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
	if err != nil {
		return err
	}
	out, _ := resp.Output("score")
	scores, err := serving.Values[float32](out)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	short := []string{"amount", "hour", "m.risk", "dist", "txn24h", "age", "card", "foreign"}
	if len(onnxbuild.FraudFeatures) == len(short) {
		fmt.Printf("features: %s\n\n", strings.Join(onnxbuild.FraudFeatures, ", "))
	}
	fmt.Fprintf(w, "transaction\t%s\tscore\tdecision\t\n", strings.Join(short, "\t"))
	for i, t := range txns {
		var cells []string
		for _, f := range t.features {
			cells = append(cells, fmt.Sprintf("%.2f", f))
		}
		decision := "approve"
		switch {
		case scores[i] >= 0.5:
			decision = "DECLINE"
		case scores[i] >= 0.2:
			decision = "review"
		}
		fmt.Fprintf(w, "%s\t%s\t%.3f\t%s\t\n", t.desc, strings.Join(cells, "\t"), scores[i], decision)
	}
	return w.Flush()
}
