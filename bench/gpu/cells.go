package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// result is one cell of the table.
type result struct {
	net, precision, device, mode string
	callers                      int
	rowsPerSec                   float64
	p50, p99                     time.Duration
	rowsPerBatch                 float64 // 0 when not batched
	err                          error
}

// window runs work on g goroutines: a warm-up whose results are dropped,
// then the measured span. work serves some rows per call; the latencies
// of calls that end in the measured span are kept.
func window(g int, warm, dur time.Duration, work func(i int) (rows int, err error)) (rowsPerSec float64, lat []time.Duration, err error) {
	var phase atomic.Int32 // 0 warm-up, 1 measured, 2 stop
	var rows atomic.Int64
	var failed atomic.Bool
	errs := make([]error, g)
	lats := make([][]time.Duration, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			for phase.Load() != 2 {
				t0 := time.Now()
				n, err := work(i)
				if err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				if phase.Load() == 1 {
					rows.Add(int64(n))
					lats[i] = append(lats[i], time.Since(t0))
				}
			}
		})
	}
	time.Sleep(warm)
	phase.Store(1)
	start := time.Now()
	time.Sleep(dur)
	// A cell whose calls outlast the window (a loaded machine, a huge
	// batch) waits for one, up to ten windows, rather than report zero.
	for rows.Load() == 0 && !failed.Load() && time.Since(start) < 10*dur {
		time.Sleep(dur / 10)
	}
	phase.Store(2)
	elapsed := time.Since(start)
	wg.Wait()
	return float64(rows.Load()) / elapsed.Seconds(), slices.Concat(lats...), errors.Join(errs...)
}

func quantiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
	return q(0.50), q(0.99)
}

// closedLoop has callers goroutines each send one-row requests to p back
// to back, as clients of a server do.
func closedLoop(p serving.Predictor, n network, callers int, warm, dur time.Duration) result {
	reqs := make([]*serving.Request, callers)
	for i := range reqs {
		reqs[i] = n.request(1, rand.New(rand.NewPCG(uint64(i), 9)))
	}
	ctx := context.Background()
	rps, lat, err := window(callers, warm, dur, func(i int) (int, error) {
		_, err := p.Predict(ctx, reqs[i])
		return 1, err
	})
	r := result{callers: callers, rowsPerSec: rps, err: err}
	r.p50, r.p99 = quantiles(lat)
	return r
}

// rawSession is onnxruntime_go alone, with the options Load would use: the
// ideal servekit is measured against.
type rawSession struct {
	s *ort.DynamicAdvancedSession
	n network
}

func newRawSession(model []byte, n network, cuda bool, deviceID, intraOp int, convAlgo string) (*rawSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(intraOp); err != nil {
		return nil, err
	}
	if cuda {
		co, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, err
		}
		defer co.Destroy()
		opts := map[string]string{"device_id": strconv.Itoa(deviceID)}
		if convAlgo != "" {
			opts["cudnn_conv_algo_search"] = convAlgo
		}
		if err := co.Update(opts); err != nil {
			return nil, err
		}
		if err := so.AppendExecutionProviderCUDA(co); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{n.input}, []string{n.output}, so)
	if err != nil {
		return nil, err
	}
	return &rawSession{s: s, n: n}, nil
}

func (r *rawSession) Close() { r.s.Destroy() }

// batchValues are the preallocated input and output of one pre-formed
// batch, reused run after run.
type batchValues struct{ in, out ort.Value }

func (r *rawSession) values(rows int, rng *rand.Rand) (batchValues, error) {
	t := r.n.tensor(rows, rng)
	outShape := slices.Concat([]int64{int64(rows)}, r.n.outRow)
	outN, _ := serving.NumElements(outShape)
	if r.n.dtype == serving.FP16 {
		in, err := ort.NewCustomDataTensor(ort.NewShape(t.Shape...), t.RawBytes(), ort.TensorElementDataTypeFloat16)
		if err != nil {
			return batchValues{}, err
		}
		out, err := ort.NewCustomDataTensor(ort.NewShape(outShape...), make([]byte, 2*outN), ort.TensorElementDataTypeFloat16)
		if err != nil {
			in.Destroy()
			return batchValues{}, err
		}
		return batchValues{in, out}, nil
	}
	x, _ := serving.Values[float32](t)
	in, err := ort.NewTensor(ort.NewShape(t.Shape...), x)
	if err != nil {
		return batchValues{}, err
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(outShape...))
	if err != nil {
		in.Destroy()
		return batchValues{}, err
	}
	return batchValues{in, out}, nil
}

func (v batchValues) Destroy() {
	v.in.Destroy()
	v.out.Destroy()
}

// preformed runs pre-formed batches of rows rows back to back on g
// goroutines, each with its own tensors: ONNX Runtime with nothing of
// servekit around it.
func (r *rawSession) preformed(rows, g int, warm, dur time.Duration) result {
	vals := make([]batchValues, g)
	for i := range vals {
		v, err := r.values(rows, rand.New(rand.NewPCG(uint64(i), 10)))
		if err != nil {
			return result{err: err}
		}
		defer v.Destroy()
		vals[i] = v
	}
	rps, lat, err := window(g, warm, dur, func(i int) (int, error) {
		return rows, r.s.Run([]ort.Value{vals[i].in}, []ort.Value{vals[i].out})
	})
	res := result{callers: g, rowsPerSec: rps, err: err, rowsPerBatch: float64(rows)}
	res.p50, res.p99 = quantiles(lat)
	return res
}

// runTime is the mean time of one run of f over about dur, after warm.
func runTime(warm, dur time.Duration, f func() error) (time.Duration, error) {
	for end := time.Now().Add(warm); time.Now().Before(end); {
		if err := f(); err != nil {
			return 0, err
		}
	}
	n, start := 0, time.Now()
	for time.Since(start) < dur {
		if err := f(); err != nil {
			return 0, err
		}
		n++
	}
	return time.Since(start) / time.Duration(max(n, 1)), nil
}

// bound runs through an I/O binding: the output bound once, the input
// bound again before every run, as new data would be (binding a host
// input to a CUDA session copies it to the device at bind time, so
// binding it once would skip the very transfer being measured).
func (r *rawSession) bound(v batchValues) (func() error, func(), error) {
	b, err := r.s.CreateIoBinding()
	if err != nil {
		return nil, nil, err
	}
	if err := b.BindOutput(r.n.output, v.out); err != nil {
		b.Destroy()
		return nil, nil, err
	}
	run := func() error {
		b.ClearBoundInputs()
		if err := b.BindInput(r.n.input, v.in); err != nil {
			return err
		}
		return r.s.RunWithBinding(b)
	}
	return run, func() { b.Destroy() }, nil
}
