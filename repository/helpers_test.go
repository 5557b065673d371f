package repository_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// The fake backend: a model file holds one line that says what the loader
// does with it.
//
//	ok <tag>        loads; answers {"who": "<model>/<version>:ok <tag>"}
//	dims=1,512      loads; answers only inputs x of exactly that shape
//	block           loads; Predict waits until the loader's gate closes
//	fail <why>      the load fails with InvalidArgument (a corrupt file)
//	hang            the load waits for its ctx to end
//	panic           the load panics
//	nil             the load returns neither a Predictor nor an error
type fakeLoader struct {
	live   atomic.Int64 // Predictors loaded and not closed
	loads  atomic.Int64
	gate   chan struct{} // closed to let "block" models answer; nil: no wait
	mu     sync.Mutex
	warmed map[string][]*serving.Request // warm-up requests (cache_bypass set) by model/version
	make   func() serving.Predictor      // when set, "ok" files load what it returns
}

func newLoader() *fakeLoader {
	return &fakeLoader{warmed: map[string][]*serving.Request{}}
}

func (f *fakeLoader) Load(ctx context.Context, v repository.Version) (serving.Predictor, error) {
	f.loads.Add(1)
	b, err := os.ReadFile(v.Path)
	if err != nil {
		return nil, err
	}
	content := strings.TrimSpace(string(b))
	switch {
	case strings.HasPrefix(content, "fail"):
		return nil, serving.Errorf(serving.InvalidArgument, "fake: %s/%s: corrupt model file: %s", v.Model, v.Version, content)
	case content == "hang":
		<-ctx.Done()
		return nil, serving.ContextError(ctx, "fake: load")
	case content == "panic":
		panic("fake loader panic")
	case content == "nil":
		return nil, nil
	case f.make != nil:
		return f.make(), nil
	}
	m := &fakeModel{loader: f, who: v.Model + "/" + v.Version + ":" + content, block: content == "block"}
	if dims, ok := strings.CutPrefix(content, "dims="); ok {
		for _, d := range strings.Split(dims, ",") {
			n, _ := strconv.ParseInt(d, 10, 64)
			m.dims = append(m.dims, n)
		}
	}
	f.live.Add(1)
	return m, nil
}

func (f *fakeLoader) warmups(key string) []*serving.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.warmed[key]
}

// fakeModel says who it is. A request that reaches it after Close fails,
// which is how the tests see a request reach a closed Predictor.
type fakeModel struct {
	loader *fakeLoader
	who    string
	dims   []int64
	block  bool
	closed atomic.Bool
}

func (m *fakeModel) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if m.closed.Load() {
		return nil, serving.Errorf(serving.Internal, "fake %s: predict after close", m.who)
	}
	if err := serving.ContextError(ctx, "fake"); err != nil {
		return nil, err
	}
	if warm, _ := req.Params.Bool(serving.ParamCacheBypass); warm {
		m.loader.mu.Lock()
		key := req.Model + "/" + req.Version
		m.loader.warmed[key] = append(m.loader.warmed[key], cloneReq(req))
		m.loader.mu.Unlock()
	}
	if m.dims != nil {
		x, ok := req.Input("x")
		if !ok || fmt.Sprint(x.Shape) != fmt.Sprint(m.dims) {
			return nil, serving.Errorf(serving.Internal, "fake %s: Pad reflect requires axis length >= 2 (got %v)", m.who, x.Shape)
		}
	}
	if m.block && m.loader.gate != nil {
		select {
		case <-m.loader.gate:
		case <-ctx.Done():
			return nil, serving.ContextError(ctx, "fake")
		}
	}
	out, err := serving.NewStrings("who", []int64{1}, []string{m.who})
	if err != nil {
		return nil, err
	}
	return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
}

func cloneReq(req *serving.Request) *serving.Request {
	c := req.Clone()
	for i := range c.Inputs {
		c.Inputs[i] = c.Inputs[i].Clone()
	}
	return c
}

func (m *fakeModel) Ready() bool { return !m.closed.Load() }

func (m *fakeModel) Metadata() serving.Metadata {
	return serving.Metadata{Name: "fake", Platform: "fake",
		Inputs:  []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, -1}}},
		Outputs: []serving.TensorSpec{{Name: "who", DataType: serving.Bytes, Shape: []int64{1}}}}
}

func (m *fakeModel) Close() error {
	if !m.closed.Swap(true) {
		m.loader.live.Add(-1)
	}
	return nil
}

// tree writes files under a new root: path → content. A path ending in "/"
// is a directory.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	write(t, root, files)
	return root
}

func write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		// Write then rename, as the package doc tells users to.
		if err := atomicfile.WriteFile(full, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t testing.TB, root, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logBuffer collects slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// open opens a repository on root with the fake loader and no watcher
// (tests call Sync), closed at the end of the test.
func open(t *testing.T, root string, f *fakeLoader, opts ...repository.Option) *repository.Repository {
	t.Helper()
	opts = append([]repository.Option{repository.WithPollInterval(0), repository.WithLogger(quiet)}, opts...)
	r, err := repository.Open(context.Background(), root, f.Load, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := f.live.Load(); n != 0 {
			t.Errorf("%d loaded Predictors left open after Close", n)
		}
	})
	return r
}

func resync(t *testing.T, r *repository.Repository) {
	t.Helper()
	if err := r.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// ask sends one unversioned (or pinned) request to a model's router and
// returns who answered and the version the response names.
func ask(t *testing.T, r *repository.Repository, model, version string) (who, answered string, err error) {
	t.Helper()
	return askShape(t, r, model, version, 1, 1)
}

// askShape is ask with an input x of the given shape.
func askShape(t *testing.T, r *repository.Repository, model, version string, shape ...int64) (who, answered string, err error) {
	t.Helper()
	rt, ok := r.Router(model)
	if !ok {
		return "", "", fmt.Errorf("no model %q", model)
	}
	x, _ := serving.Make("x", serving.FP32, shape)
	resp, err := rt.Predict(context.Background(), &serving.Request{Model: model, Version: version, Inputs: []serving.Tensor{x}})
	if err != nil {
		return "", "", err
	}
	out, _ := resp.Output("who")
	s, _ := out.Strings()
	return s[0], resp.Version, nil
}

// states returns "version:state" for every version of model, in order.
func states(r *repository.Repository, model string) string {
	for _, m := range r.Status().Models {
		if m.Name == model {
			var parts []string
			for _, v := range m.Versions {
				parts = append(parts, v.Version+":"+string(v.State))
			}
			return strings.Join(parts, " ")
		}
	}
	return "<absent>"
}

func versionStatus(r *repository.Repository, model, version string) repository.VersionStatus {
	for _, m := range r.Status().Models {
		if m.Name == model {
			for _, v := range m.Versions {
				if v.Version == version {
					return v
				}
			}
		}
	}
	return repository.VersionStatus{}
}

// hammer starts callers goroutines, each calling what caller(i) returns in a
// loop (yielding between calls, as a caller waiting on a network would:
// goroutines spinning on two cores would starve the reloads under test).
// The returned stop ends them and reports the calls that succeeded, those
// that failed, and the first error.
func hammer(callers int, caller func(i int) func() error) (stop func() (answers, failures int64, first error)) {
	ctx, cancel := context.WithCancel(context.Background())
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range callers {
		call := caller(i)
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := call(); err == nil {
					ok.Add(1)
				} else if bad.Add(1) == 1 {
					firstErr.Store(err)
				}
				runtime.Gosched()
			}
		})
	}
	return func() (int64, int64, error) {
		cancel()
		wg.Wait()
		err, _ := firstErr.Load().(error)
		return ok.Load(), bad.Load(), err
	}
}
