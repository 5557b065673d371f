package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/servekit/servekit/internal/retry"
)

// An operation that is busy twice, then answers; a refusal would have
// stopped at once.
func ExamplePolicy_Do() {
	busy := 2
	p := retry.Policy{Retries: 3, Base: time.Millisecond, Max: 10 * time.Millisecond,
		OnRetry: func(err error, _ time.Duration) { fmt.Println("retrying after:", err) }}
	err := p.Do(context.Background(), func(context.Context) error {
		if busy > 0 {
			busy--
			return retry.After(errors.New("busy"), time.Millisecond)
		}
		return nil
	})
	fmt.Println("done:", err)
	// Output:
	// retrying after: busy
	// retrying after: busy
	// done: <nil>
}
