package batch_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// endlessModel builds a model that runs for a long time whatever it is
// given: "x" FP32 [-1, 1024] is summed over the batch, spread to 1024×1024
// and multiplied by the identity nodes times, each MatMul about 2 GFLOP (a
// tenth of a second or more on one core: 300 run for half a minute or
// more); "y" = x + the column sums of the result, [-1, 1024]. It depends on
// its input, so ONNX Runtime cannot fold it away at load time, and it is
// nodes operators long, so a terminated run stops within one of them.
func endlessModel(nodes int) ([]byte, error) {
	const n = 1024
	g := onnxbuild.NewGraph("endless")
	g.Input("x", onnxbuild.Float, -1, n)
	g.Initializer("axes", onnxbuild.Int64, []int64{1}, []int64{0})
	g.Initializer("square", onnxbuild.Int64, []int64{2}, []int64{n, n})
	eye := make([]float32, n*n)
	for i := range n {
		eye[i*n+i] = 1
	}
	g.Initializer("eye", onnxbuild.Float, []int64{n, n}, eye)
	g.Node("ReduceSum", []string{"x", "axes"}, []string{"sum"}, onnxbuild.AttrInt("keepdims", 1))
	g.Node("Expand", []string{"sum", "square"}, []string{"z0"})
	z := "z0"
	for i := range nodes {
		next := "z" + strconv.Itoa(i+1)
		g.Node("MatMul", []string{z, "eye"}, []string{next})
		z = next
	}
	g.Node("ReduceSum", []string{z, "axes"}, []string{"colsum"}, onnxbuild.AttrInt("keepdims", 1))
	g.Node("Add", []string{"x", "colsum"}, []string{"y"})
	g.Output("y", onnxbuild.Float, -1, n)
	return g.Model(onnxbuild.DefaultOpset)
}

// spyCtx tells when the backend first asks for Done: the ONNX backend does
// so just before it starts ONNX Runtime's run, to arm its cancellation.
type spyCtx struct {
	context.Context
	once  sync.Once
	asked chan<- struct{}
}

func (c *spyCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.asked <- struct{}{} })
	return c.Context.Done()
}

// TestEndedRunStopsONNXRuntime: when the batcher ends a joined run at its
// limit, the ONNX backend really stops the run (through its ctx and ONNX
// Runtime's terminate flag), rather than leaving it to burn a core for
// minutes.
func TestEndedRunStopsONNXRuntime(t *testing.T) {
	orttest.Require(t)
	bytes, err := endlessModel(300)
	if err != nil {
		t.Fatal(err)
	}
	model, err := onnx.LoadBytes("endless", bytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	md, _ := serving.MetadataOf(model)
	entered, returned := make(chan struct{}, 10), make(chan error, 10)
	watched := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		resp, err := model.Predict(&spyCtx{Context: ctx, asked: entered}, req)
		returned <- err
		return resp, err
	}).WithMetadata(md)
	clk := newFakeClock()
	b := mustNew(t, watched, batch.WithAdaptive(false), batch.WithMaxDelay(time.Hour), batch.WithClock(clk),
		batch.WithMaxRunTime(time.Hour))
	row := func() *serving.Request {
		x, _ := serving.NewTensor("x", []int64{1, 1024}, make([]float32, 1024))
		return &serving.Request{Inputs: []serving.Tensor{x}}
	}
	var chans []<-chan answer
	for i := range 2 {
		chans = append(chans, async(context.Background(), b, row()))
		waitQueued(t, b, i+1)
	}
	clk.Advance(time.Hour) // the two run joined
	<-entered
	// Half of the members' max run time later, the run is ended.
	limit := clk.Now().Add(30 * time.Minute)
	clk.waitTimer(t, limit)
	clk.Advance(30 * time.Minute)
	err = <-returned
	if serving.CodeOf(err) != serving.Canceled || !strings.Contains(err.Error(), "run stopped") {
		t.Errorf("the ended run returned %v, want onnx's canceled: run stopped", err)
	}
	// Each member now runs alone, as endless; stop them too.
	<-entered
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Shutdown(ctx); serving.CodeOf(err) != serving.Canceled {
		t.Errorf("Shutdown: %v", err)
	}
	for range 2 {
		if err := <-returned; serving.CodeOf(err) != serving.Canceled {
			t.Errorf("a member's own run returned %v, want canceled", err)
		}
	}
	for _, ch := range chans {
		if r := <-ch; r.err == nil {
			t.Errorf("a member of the endless model was answered")
		}
	}
}
