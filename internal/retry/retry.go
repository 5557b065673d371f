package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy says how often and how long to retry. The zero Policy tries once.
type Policy struct {
	// Retries after the first attempt.
	Retries int
	// Base is the wait before the first retry; it doubles with each one.
	Base time.Duration
	// Max caps a wait, a hint's included. Zero: no cap.
	Max time.Duration
	// OnRetry, when set, is called before each wait with the error that
	// caused it and the wait (for counters and logs).
	OnRetry func(err error, wait time.Duration)
}

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent marks err as not worth retrying: Do returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

type after struct {
	error
	d time.Duration
}

func (a after) Unwrap() error { return a.error }

// After marks err as retryable no sooner than d from now (an HTTP
// Retry-After). A d of zero or less adds nothing.
func After(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return after{err, d}
}

// Do calls op until it returns nil, returns a Permanent error, has been
// retried p.Retries times, or ctx ends; it returns op's last error (without
// the markers of this package), joined with the context's cause when ctx
// ended during a wait.
func (p Policy) Do(ctx context.Context, op func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return unmark(err)
		}
		if attempt >= p.Retries || ctx.Err() != nil {
			return unmark(err)
		}
		wait := p.wait(attempt, err)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return unmark(err) // the wait would outlive the caller
		}
		if p.OnRetry != nil {
			p.OnRetry(unmark(err), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(unmark(err), context.Cause(ctx))
		}
	}
}

// wait is the jittered backoff before retry attempt+1, lengthened to the
// error's hint; both capped at Max.
func (p Policy) wait(attempt int, err error) time.Duration {
	d := p.Base << min(attempt, 30)
	if d < 0 || (p.Max > 0 && d > p.Max) {
		d = p.Max
	}
	if d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	var a after
	if errors.As(err, &a) && a.d > d {
		d = a.d
		if p.Max > 0 {
			d = min(d, p.Max)
		}
	}
	return d
}

// unmark removes this package's markers from the top of err's chain.
func unmark(err error) error {
	for {
		switch e := err.(type) {
		case permanent:
			err = e.error
		case after:
			err = e.error
		default:
			return err
		}
	}
}
