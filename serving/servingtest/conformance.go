package servingtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
)

// Config describes the Predictor under test for Conformance.
type Config struct {
	// New returns a fresh Predictor. Conformance closes it with serving.Close.
	New func(t *testing.T) serving.Predictor
	// Request returns a valid request; it is called once per use.
	Request func() *serving.Request
	// Deterministic says that equal requests get equal answers, so answers
	// given concurrently are compared with the first.
	Deterministic bool
}

// Conformance checks the contract every Predictor in servekit keeps:
//   - a valid request gets an answer that agrees with the metadata, if the
//     Predictor describes itself, and the request is left unmodified;
//   - concurrent calls succeed (run it under -race);
//   - a cancelled context and a past deadline give Canceled and
//     DeadlineExceeded errors;
//   - after Close, Predict returns serving.ErrClosed and Close is idempotent.
func Conformance(t *testing.T, c Config) {
	t.Helper()
	t.Run("Answer", func(t *testing.T) {
		p := c.New(t)
		defer serving.Close(p)
		req := c.Request()
		before := req.Clone()
		resp, err := p.Predict(context.Background(), req)
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		if resp == nil {
			t.Fatal("Predict returned a nil Response and no error")
		}
		if !reflect.DeepEqual(before, req) {
			t.Errorf("Predict modified the request:\nbefore %+v\nafter  %+v", before, req)
		}
		if md, ok := serving.MetadataOf(p); ok {
			if err := agrees(md, req, resp); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		p := c.New(t)
		defer serving.Close(p)
		first, err := p.Predict(context.Background(), c.Request())
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		const workers, calls = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*calls)
		for range workers {
			wg.Go(func() {
				for range calls {
					resp, err := p.Predict(context.Background(), c.Request())
					switch {
					case err != nil:
						errs <- err
					case c.Deterministic && !reflect.DeepEqual(resp.Outputs, first.Outputs):
						errs <- fmt.Errorf("concurrent answer %v differs from %v", resp.Outputs, first.Outputs)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		p := c.New(t)
		defer serving.Close(p)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Predict(ctx, c.Request())
		if code := serving.CodeOf(err); code != serving.Canceled {
			t.Errorf("Predict with a cancelled context: code %v (%v), want canceled", code, err)
		}
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = p.Predict(ctx, c.Request())
		if code := serving.CodeOf(err); code != serving.DeadlineExceeded {
			t.Errorf("Predict past its deadline: code %v (%v), want deadline_exceeded", code, err)
		}
	})
	t.Run("Close", func(t *testing.T) {
		p := c.New(t)
		if err := serving.Close(p); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := p.Predict(context.Background(), c.Request()); !errors.Is(err, serving.ErrClosed) {
			t.Errorf("Predict after Close: %v, want serving.ErrClosed", err)
		}
		if err := serving.Close(p); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		if serving.IsReady(p) {
			t.Error("IsReady after Close: true, want false")
		}
	})
}

// agrees checks an answer against the metadata: the outputs asked for (all,
// when none were named), each once, with the declared datatype, rank and
// fixed dims, and data consistent with its shape.
func agrees(md serving.Metadata, req *serving.Request, resp *serving.Response) error {
	want := req.Outputs
	if len(want) == 0 {
		for _, s := range md.Outputs {
			want = append(want, s.Name)
		}
	}
	if len(resp.Outputs) != len(want) {
		return fmt.Errorf("answer has %d outputs, want %d (%v)", len(resp.Outputs), len(want), want)
	}
	for _, name := range want {
		out, ok := resp.Output(name)
		if !ok {
			return fmt.Errorf("answer lacks output %q", name)
		}
		spec, ok := md.Output(name)
		if !ok {
			return fmt.Errorf("output %q is not in the metadata", name)
		}
		if ok, why := spec.Matches(out); !ok {
			return fmt.Errorf("output %q: %s", name, why)
		}
		if err := out.Validate(); err != nil {
			return fmt.Errorf("output %q: %w", name, err)
		}
	}
	return nil
}
