package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/servekit/servekit/serving"
)

// counts is the callers' tally.
type counts struct {
	Requests, Failed int64
	First            error
	ByVersion        map[string]int64
}

// loadGen is callers calling the router in a loop, each with its own
// users (sticky keys) and rows.
type loadGen struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards total
	total  counts
}

func startLoad(p serving.Predictor, callers int, think time.Duration) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	g := &loadGen{cancel: cancel, total: counts{ByVersion: map[string]int64{}}}
	for i := range callers {
		g.wg.Go(func() { g.caller(ctx, p, uint64(i), think) })
	}
	return g
}

func (g *loadGen) caller(ctx context.Context, p serving.Predictor, seed uint64, think time.Duration) {
	pause := time.NewTimer(0)
	defer pause.Stop()
	rng := rand.New(rand.NewPCG(seed, 0x10ad))
	c := counts{ByVersion: map[string]int64{}}
	for ctx.Err() == nil {
		rows := 1 + rng.IntN(4)
		x := make([]float32, rows*8)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		in, _ := serving.NewTensor("features", []int64{int64(rows), 8}, x)
		req := &serving.Request{Inputs: []serving.Tensor{in}, Key: fmt.Sprintf("user-%d", rng.IntN(1000))}
		resp, err := p.Predict(ctx, req)
		if ctx.Err() != nil {
			break // stopping: this request was cut short by the generator, not failed
		}
		c.Requests++
		if err != nil {
			c.Failed++
			if c.First == nil {
				c.First = err
			}
			continue
		}
		c.ByVersion[resp.Version]++
		pause.Reset(think)
		select {
		case <-pause.C:
		case <-ctx.Done():
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total.Requests += c.Requests
	g.total.Failed += c.Failed
	if g.total.First == nil {
		g.total.First = c.First
	}
	for v, n := range c.ByVersion {
		g.total.ByVersion[v] += n
	}
}

// stop ends the load and returns the tally.
func (g *loadGen) stop() counts {
	g.cancel()
	g.wg.Wait()
	return g.total
}
