package quality_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A fraud model's predictions are remembered by request id; its labels
// (chargebacks) arrive later over HTTP. With a reference, each window is
// estimated before any label, and its realized metrics follow the labels.
func Example() {
	r := rand.New(rand.NewPCG(1, 2))
	// The reference: held-out transactions, the score the model gave each,
	// and whether it was fraud.
	rb, _ := quality.NewReferenceBuilder("fraud", "1", quality.BinaryTask("score"))
	for range 5000 {
		p := r.Float64()
		rb.Add([]float64{p}, b2f(r.Float64() < p))
	}
	ref, _ := rb.Reference()

	qm, _ := quality.NewMonitor(quality.WithReference(ref), quality.WithWindow(quality.CountWindow(1000)))
	defer qm.Close()

	// The model: it scores each transaction with its own probability.
	truth := map[string]float64{}
	model := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		p := r.Float64()
		truth[req.ID] = b2f(r.Float64() < p)
		score, _ := serving.NewTensor("score", []int64{1}, []float64{p})
		return &serving.Response{Model: req.Model, Version: "1", Outputs: []serving.Tensor{score}}, nil
	})
	p := qm.Middleware()(model)
	x, _ := serving.NewTensor("features", []int64{1, 1}, []float32{0})
	for i := range 1000 {
		id := fmt.Sprint("tx-", i)
		p.Predict(context.Background(), &serving.Request{ID: id, Model: "fraud", Inputs: []serving.Tensor{x}})
	}
	qm.Flush(context.Background())
	r1 := qm.Results("fraud", "1")[0]
	auc, _ := r1.Metric(quality.AUC)
	fmt.Printf("before the labels: AUC estimated %.2f, realized known: %v\n", auc.Estimated.Value, auc.Realized != nil)

	// The chargeback feed posts the labels.
	mux := http.NewServeMux()
	mux.Handle("POST /v2/models/{model}/labels", qm.LabelsHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var body strings.Builder
	body.WriteString(`{"labels": [`)
	for i := range 1000 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"id": "tx-%d", "label": %v}`, i, truth[fmt.Sprint("tx-", i)] == 1)
	}
	body.WriteString("]}")
	resp, _ := http.Post(srv.URL+"/v2/models/fraud/labels", "application/json", strings.NewReader(body.String()))
	resp.Body.Close()
	fmt.Println("labels:", resp.Status)

	qm.Flush(context.Background())
	r1 = qm.Results("fraud", "1")[0]
	auc, _ = r1.Metric(quality.AUC)
	within := *auc.Realized >= auc.Estimated.Lower && *auc.Realized <= auc.Estimated.Upper
	fmt.Printf("after: %d labelled, settled %v, realized AUC within the estimate's band: %v\n",
		r1.Window.Labelled, r1.Settled, within)
	fmt.Println("alarmed:", qm.Status("fraud", "1").Alarmed)
	// Output:
	// before the labels: AUC estimated 0.83, realized known: false
	// labels: 200 OK
	// after: 1000 labelled, settled true, realized AUC within the estimate's band: true
	// alarmed: false
}
