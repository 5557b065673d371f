package predlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// heapAfterGC is the live heap now.
func heapAfterGC() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func totalAlloc() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.TotalAlloc)
}

// openIn counts this process's descriptors open on files in dir.
func openIn(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

// Row 11 of issue 18: 500 bad requests, each with input names of its own,
// opened 500 files and held 33.7 MB of heap for an hour. The sink now
// keeps at most WithMaxOpenFiles open (the least recently used is rotated,
// its records committed), so descriptors and heap stay flat however many
// column layouts clients invent.
func TestDistinctLayoutsAreBounded(t *testing.T) {
	const bad = 500
	held := func(t *testing.T, opts ...predlog.FileOption) (files int, heap int64) {
		dir := t.TempDir()
		before := heapAfterGC()
		sink, err := predlog.NewFileSink(dir, rowio.JSONL, opts...)
		if err != nil {
			t.Fatal(err)
		}
		l := newLogger(t, servingtest.Linear(2), sink)
		for i := range bad {
			x, _ := serving.NewTensor(fmt.Sprintf("in%03d", i), []int64{1, 2}, []float32{1, 2})
			if _, err := l.Predict(context.Background(), &serving.Request{Model: "linear", Inputs: []serving.Tensor{x}}); serving.CodeOf(err) != serving.InvalidArgument {
				t.Fatalf("request %d: %v, want invalid_argument", i, err)
			}
		}
		if err := l.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		files, heap = openIn(t, dir), heapAfterGC()-before
		if err := errors.Join(l.Close(), sink.Close()); err != nil {
			t.Fatal(err)
		}
		logged, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(logged) != bad {
			t.Errorf("%d files committed, want one per layout (%d): none lost", len(logged), bad)
		}
		return files, heap
	}
	files, heap := held(t)
	t.Logf("default: %d descriptors, %d KiB of heap held after %d bad requests", files, heap>>10, bad)
	// The lock file, and the open log files.
	if files > 1+predlog.DefaultMaxOpenFiles {
		t.Errorf("%d descriptors open in the log directory, want at most %d", files, 1+predlog.DefaultMaxOpenFiles)
	}
	// Each open file holds two 64 KiB buffers (the sink's, rowio's).
	if limit := int64(predlog.DefaultMaxOpenFiles)*160<<10 + 1<<20; heap > limit {
		t.Errorf("%d KiB of heap held, want at most %d KiB", heap>>10, limit>>10)
	}
	// What the cap saves: with room for every layout, every file stays open.
	allFiles, allHeap := held(t, predlog.WithMaxOpenFiles(bad))
	t.Logf("uncapped: %d descriptors, %d KiB of heap", allFiles, allHeap>>10)
	if allHeap < 10*heap {
		t.Errorf("uncapped heap %d KiB, capped %d KiB: want the cap to save at least 10×", allHeap>>10, heap>>10)
	}
}

// A slow sink and large requests: the queue holds at most WithQueueBytes,
// and a record that does not fit is dropped before it is copied, so the
// bytes allocated are bounded too, not only those kept.
func TestQueueIsBoundedInBytes(t *testing.T) {
	const mib, calls, bound = 1 << 20, 64, 8 << 20
	sink := &memSink{gate: make(chan struct{})}
	one, _ := serving.NewTensor("y", []int64{1}, []float32{0})
	model := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		return &serving.Response{Model: "m", Outputs: []serving.Tensor{one}}, nil
	})
	x, _ := serving.NewTensor("x", []int64{1, mib / 4}, make([]float32, mib/4))
	req := &serving.Request{Model: "m", Inputs: []serving.Tensor{x}}

	before := heapAfterGC()
	l := newLogger(t, model, sink, predlog.WithQueueBytes(bound), predlog.WithMaxBatch(1))
	alloc := totalAlloc()
	for range calls {
		if _, err := l.Predict(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	allocated := totalAlloc() - alloc
	held := heapAfterGC() - before
	s := l.Stats()
	t.Logf("%d calls of 1 MiB to a stuck sink: %d KiB allocated, %d KiB held, stats %+v", calls, allocated>>10, held>>10, s)
	if s.Dropped < calls-bound/mib {
		t.Errorf("dropped %d of %d", s.Dropped, calls)
	}
	// One record in the stuck Write, bound/mib in the queue: their copies
	// are all that was allocated or kept, against calls MiB unbounded.
	if limit := int64(bound + 2*mib); allocated > limit || held > limit {
		t.Errorf("allocated %d KiB, held %d KiB: want at most %d KiB", allocated>>10, held>>10, limit>>10)
	}
	close(sink.gate)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Written records give their bytes back: the queue takes more again.
	dropped := l.Stats().Dropped
	for range 4 {
		l.Predict(context.Background(), req)
	}
	l.Close()
	if s := l.Stats(); s.Dropped != dropped || s.Logged+s.Dropped != calls+4 {
		t.Errorf("after the sink caught up: %+v", s)
	}
}
