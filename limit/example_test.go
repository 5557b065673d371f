package limit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// One slot and no queue: while a request runs, the next is refused at once
// with a hint of when to retry, which the HTTP handler sends as 429 and
// Retry-After.
func Example() {
	started, finish := make(chan struct{}), make(chan struct{})
	model := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		close(started)
		<-finish
		return &serving.Response{Model: req.Model}, nil
	})
	p := limit.Middleware(limit.WithMaxInFlight(1), limit.WithMaxQueue(0))(model)
	defer serving.Close(p)

	done := make(chan error)
	go func() {
		_, err := p.Predict(context.Background(), &serving.Request{Model: "fraud"})
		done <- err
	}()
	<-started
	_, err := p.Predict(context.Background(), &serving.Request{Model: "fraud"})
	fmt.Println(serving.CodeOf(err), errors.Is(err, serving.ErrOverloaded), serving.RetryAfterOf(err) > 0)
	close(finish)
	fmt.Println("first request:", <-done)
	// Output:
	// resource_exhausted true true
	// first request: <nil>
}
