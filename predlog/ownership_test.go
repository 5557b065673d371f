package predlog_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The rule on serving.Middleware: a Logger closes the model it wraps and
// never the sink handed to it, which two chains share here and which keeps
// taking the second chain's records after the first was closed.
func TestCloseClosesTheModelNotTheSink(t *testing.T) {
	sink := &memSink{}
	servingtest.Ownership(t, predlog.Middleware(sink), func(t *testing.T, p serving.Predictor) {
		if err := p.(*predlog.Logger).Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(sink.records()); n != 1 || sink.closed {
			t.Errorf("after the first chain closed: %d records, sink closed %v; want 1, open", n, sink.closed)
		}
	})
	if sink.closed {
		t.Error("a Logger closed the sink: its maker does")
	}
}

func TestInvalidOptionsAreInvalidArgument(t *testing.T) {
	for name, opt := range map[string]predlog.Option{
		"rate above 1":    predlog.WithSampleRate(1.5),
		"negative rate":   predlog.WithSampleRate(-0.1),
		"NaN rate":        predlog.WithSampleRate(math.NaN()),
		"queue size 0":    predlog.WithQueueSize(0),
		"queue bytes 0":   predlog.WithQueueBytes(0),
		"max batch 0":     predlog.WithMaxBatch(0),
		"write timeout 0": predlog.WithWriteTimeout(0),
		"negative tick":   predlog.WithTick(-time.Second),
	} {
		model := servingtest.Linear(2)
		if l, err := predlog.New(model, &memSink{}, opt); serving.CodeOf(err) != serving.InvalidArgument || l != nil {
			t.Errorf("%s: New = %v, %v; want an InvalidArgument error", name, l, err)
		}
		// Middleware cannot fail: its layer answers every call with the error,
		// and still closes the model it was given.
		p := predlog.Middleware(&memSink{}, opt)(model)
		if _, err := p.Predict(context.Background(), servingtest.Rows(2, 1, 0)); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s: Predict through Middleware = %v, want InvalidArgument", name, err)
		}
		if serving.Close(p); model.Closes() != 1 {
			t.Errorf("%s: model closed %d times, want 1", name, model.Closes())
		}
	}
	if _, err := predlog.New(servingtest.Linear(2), nil); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("nil sink: %v", err)
	}
	// The edges are valid, so each case above fails for its option alone.
	l, err := predlog.New(servingtest.Linear(2), &memSink{}, predlog.WithSampleRate(0), predlog.WithSampleRate(1),
		predlog.WithQueueSize(1), predlog.WithQueueBytes(1), predlog.WithMaxBatch(1), predlog.WithWriteTimeout(time.Nanosecond), predlog.WithTick(time.Millisecond))
	if err != nil {
		t.Fatalf("options at their edges: %v", err)
	}
	l.Close()
	for name, opt := range map[string]predlog.FileOption{
		"max bytes 0":   predlog.WithMaxBytes(0),
		"max age 0":     predlog.WithMaxAge(0),
		"max open 0":    predlog.WithMaxOpenFiles(0),
		"prefix with /": predlog.WithPrefix("a/b"),
		"hidden prefix": predlog.WithPrefix(".p"),
	} {
		if _, err := predlog.NewFileSink(t.TempDir(), rowio.JSONL, opt); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("FileSink %s: %v, want InvalidArgument", name, err)
		}
	}
	for name, url := range map[string]string{"no scheme": "collector:8080/x", "ftp": "ftp://h/x", "empty": ""} {
		if _, err := predlog.NewCloudEvents(url); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("CloudEvents %s: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := predlog.NewCloudEvents("http://h/x", predlog.WithRetries(-1, 0)); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("CloudEvents negative retries: %v", err)
	}
}

// One FileSink shared by the loggers of two models, written at once (run
// with -race): every record of both reaches a committed file.
func TestFileSinkSharedByLoggers(t *testing.T) {
	dir := t.TempDir()
	sink, err := predlog.NewFileSink(dir, rowio.JSONL, predlog.WithMaxBytes(2<<10))
	if err != nil {
		t.Fatal(err)
	}
	chains := []serving.Predictor{
		newLogger(t, servingtest.Linear(2), sink, predlog.WithMaxBatch(1)),
		newLogger(t, servingtest.Linear(3), sink, predlog.WithMaxBatch(1)),
	}
	var wg sync.WaitGroup
	for i, p := range chains {
		wg.Go(func() {
			for j := range 50 {
				if _, err := p.Predict(context.Background(), servingtest.Rows(2+i, 1, float32(j))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, p := range chains {
		if err := serving.Close(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "predictions-*.jsonl"))
	rows := 0
	for _, f := range files {
		rows += countLines(t, f)
	}
	if rows != 100 {
		t.Errorf("%d rows in %d files, want 100", rows, len(files))
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
