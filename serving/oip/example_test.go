package oip_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// A model registered once on a Server: the transports (httpapi, grpcapi)
// serve it, here called as they call it, then its statistics and its
// configuration, the answers of Triton's extensions.
func Example() {
	srv := oip.NewServer()
	if err := srv.Handle("linear", servingtest.Linear(2), oip.Version("1")); err != nil {
		panic(err)
	}
	ctx := context.Background()
	t, err := srv.Resolve("linear", "") // before decoding: an unknown model is NotFound
	if err != nil {
		panic(err)
	}
	res, err := srv.Infer(ctx, t, servingtest.Rows(2, 3, 0), oip.Call{})
	if err != nil {
		panic(err)
	}
	fmt.Println("answered by version", res.Version, "with", res.Outputs[0].Name, res.Outputs[0].Shape)

	st, _ := srv.Statistics("linear", "")
	fmt.Println("requests", st[0].Inference.Success.Count, "rows", st[0].InferenceCount, "runs", st[0].ExecutionCount)

	cfg, _ := srv.Config("linear", "")
	fmt.Println("max_batch_size", cfg.GetMaxBatchSize(), "input dims", cfg.GetInput()[0].GetDims())
	// Output:
	// answered by version 1 with y [3 2]
	// requests 1 rows 3 runs 1
	// max_batch_size 0 input dims [-1 2]
}
