package remote_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// A model served by a V2 server, used as a Predictor: here the server is
// servekit's REST transport on loopback, serving a fake y = 2x + 1.
func ExampleDial() {
	h := httpapi.New()
	h.Handle("linear", servingtest.Linear(2))
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	p, err := remote.Dial(ctx, srv.URL, "linear")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	resp, err := p.Predict(ctx, servingtest.Rows(2, 1, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := serving.Values[float32](resp.Outputs[0])
	fmt.Println(p.Metadata().Inputs[0].Shape, y)
	// Output: [-1 2] [3 5]
}
