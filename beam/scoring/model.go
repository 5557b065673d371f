package scoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // plain paths work everywhere
	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving"
)

// Model tells each worker how to open the Predictor it scores with. It is
// JSON-encoded into the pipeline and decoded on every worker, so it holds
// data only; code is reached by name through RegisterLoader.
type Model struct {
	// Path is the ONNX model file, read through Beam's filesystems: a local
	// path (baked into the worker image), or gs://, s3:// … when the program
	// imports that filesystem (io/filesystem/gcs, io/filesystem/s3).
	Path string `json:"path,omitempty"`
	// Name and Version label the results; by default the file name without
	// ".onnx" and "".
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// Library is the ONNX Runtime shared library on the workers. Empty: the
	// worker's $ONNXRUNTIME_LIB, then the loader's search path (see
	// onnx.InitRuntime).
	Library string `json:"library,omitempty"`
	// IntraOpThreads, when positive, sets ONNX Runtime's threads per
	// operator (the backend's default is 1: Beam runs one DoFn per core).
	IntraOpThreads int `json:"intra_op_threads,omitempty"`
	// Warmup runs the model this many times at load (onnx.WithWarmup).
	Warmup int `json:"warmup,omitempty"`
	// CUDA runs the model on GPU CUDADevice (onnx.WithCUDA).
	CUDA       bool `json:"cuda,omitempty"`
	CUDADevice int  `json:"cuda_device,omitempty"`
	// Loader names a function registered with RegisterLoader that opens the
	// Predictor instead of LoadONNX: another backend, or middleware around
	// an ONNX model. It receives this Model, so Path and the rest reach it.
	Loader string `json:"loader,omitempty"`
}

// Loader opens the Predictor of a Model on a worker. It runs in a DoFn's
// Setup, at most once at a time per distinct Model in a worker process
// (see Score), and its Predictor must describe itself (serving.Describer):
// scoring maps row values to tensors by the model's metadata.
type Loader func(ctx context.Context, m Model) (serving.Predictor, error)

var loaders = struct {
	sync.Mutex
	m map[string]Loader // guarded by the mutex
}{m: map[string]Loader{}}

// RegisterLoader makes l available to Model.Loader under name. Call it from
// an init function, so that the launching program and every worker (the
// same binary) know it. It panics on an empty or repeated name, a
// programming error that must not reach a worker.
func RegisterLoader(name string, l Loader) {
	loaders.Lock()
	defer loaders.Unlock()
	if name == "" || l == nil {
		panic("scoring: RegisterLoader needs a name and a loader")
	}
	if _, dup := loaders.m[name]; dup {
		panic(fmt.Sprintf("scoring: loader %q registered twice", name))
	}
	loaders.m[name] = l
}

func loaderOf(m Model) (Loader, error) {
	if m.Loader == "" {
		if m.Path == "" {
			return nil, fmt.Errorf("scoring: Model needs a Path or a Loader")
		}
		return LoadONNX, nil
	}
	loaders.Lock()
	defer loaders.Unlock()
	l, ok := loaders.m[m.Loader]
	if !ok {
		return nil, fmt.Errorf("scoring: no loader %q registered in this binary (RegisterLoader in an init function)", m.Loader)
	}
	return l, nil
}

// LoadONNX is the default Loader: it reads m.Path through Beam's
// filesystems and loads it with the ONNX backend and m's settings. Custom
// loaders call it to wrap the model in middleware.
func LoadONNX(ctx context.Context, m Model) (serving.Predictor, error) {
	b, err := readFile(ctx, m.Path)
	if err != nil {
		return nil, fmt.Errorf("scoring: model %s: %w", m.Path, err)
	}
	name := m.Name
	if name == "" {
		name = strings.TrimSuffix(path.Base(m.Path), ".onnx")
	}
	opts := []onnx.Option{onnx.WithVersion(m.Version)}
	if m.Library != "" {
		opts = append(opts, onnx.WithLibraryPath(m.Library))
	}
	if m.IntraOpThreads > 0 {
		opts = append(opts, onnx.WithIntraOpThreads(m.IntraOpThreads))
	}
	if m.Warmup > 0 {
		opts = append(opts, onnx.WithWarmup(m.Warmup))
	}
	if m.CUDA {
		opts = append(opts, onnx.WithCUDA(m.CUDADevice))
	}
	return onnx.LoadBytes(name, b, opts...)
}

func readFile(ctx context.Context, p string) ([]byte, error) {
	fs, err := filesystem.New(ctx, p)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// The worker-wide pool: Beam creates one DoFn instance per bundle thread
// (a dozen or more per worker on Dataflow), and an ONNX session per
// instance would multiply the model's memory for nothing, since a
// Predictor is safe for concurrent use. Instances of the same Model share
// one Predictor, counted; the last Teardown closes it. This is what
// Python's RunInference does with its shared handle.
var pool = struct {
	sync.Mutex
	m map[string]*shared // guarded by the mutex, keyed by the Model's JSON
}{m: map[string]*shared{}}

type shared struct {
	loaded chan struct{} // closed once p or err is set
	p      serving.Predictor
	err    error
	refs   int // guarded by pool's mutex
}

// acquire returns the worker's Predictor for m, loading it if no live
// DoFn holds it, and a release func that the holder must call once.
func acquire(ctx context.Context, m Model) (serving.Predictor, func() error, error) {
	load, err := loaderOf(m)
	if err != nil {
		return nil, nil, err
	}
	k, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	key := string(k)
	pool.Lock()
	e, ok := pool.m[key]
	if !ok {
		e = &shared{loaded: make(chan struct{})}
		pool.m[key] = e
	}
	e.refs++
	pool.Unlock()
	release := func() error { return releaseShared(key, e) }

	if !ok {
		p, err := load(ctx, m)
		if err == nil && p == nil {
			err = fmt.Errorf("scoring: loader %q returned no Predictor", m.Loader)
		}
		pool.Lock()
		e.p, e.err = p, err
		if err != nil && pool.m[key] == e {
			delete(pool.m, key) // the next Setup tries again
		}
		pool.Unlock()
		close(e.loaded)
	} else {
		select {
		case <-e.loaded:
		case <-ctx.Done():
			_ = release()
			return nil, nil, serving.ContextError(ctx, "scoring: waiting for the model to load")
		}
	}
	if e.err != nil {
		_ = release()
		return nil, nil, e.err
	}
	return e.p, release, nil
}

func releaseShared(key string, e *shared) error {
	pool.Lock()
	e.refs--
	last := e.refs == 0
	if last && pool.m[key] == e {
		delete(pool.m, key)
	}
	pool.Unlock()
	if !last {
		return nil
	}
	<-e.loaded // the loader holds a reference, so this never waits
	if e.err != nil {
		return nil
	}
	return serving.Close(e.p)
}
