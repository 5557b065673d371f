package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// feedback is the store of ground truth, standing for a bank's
// chargeback feed: whether a transaction was fraud becomes known only
// some time after it was scored. The load generator, which knows the
// truth, hands each answered transaction's label to record; once its
// delay has passed it reaches the file (JSON Lines: {"id": "tx-42",
// "fraud": true}), which the retrainer joins with the logged predictions
// by request id as a real pipeline joins its label table, and the
// server's labels endpoint (POST /v2/models/fraud/labels), where package
// quality joins it with the answers it remembers.
type feedback struct {
	delay time.Duration
	url   string // the labels endpoint
	token string // its bearer token
	post  *http.Client
	f     *os.File
	mu    sync.Mutex
	due   []dueLabel // guarded by mu, in the order recorded (so by due time)
	stopc chan struct{}
	done  chan struct{}
}

type dueLabel struct {
	id    string
	fraud bool
	at    time.Time
}

// openFeedback creates the file and starts the goroutine that releases
// labels as they fall due, to the file and to the labels endpoint at url
// (with the bearer token); close stops it.
func openFeedback(path, url, token string, delay time.Duration) (*feedback, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	fb := &feedback{delay: delay, url: url, token: token, post: &http.Client{Timeout: 5 * time.Second},
		f: f, stopc: make(chan struct{}), done: make(chan struct{})}
	tick := max(delay/4, 20*time.Millisecond)
	go func() {
		defer close(fb.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-fb.stopc:
				return
			case now := <-t.C:
				_ = fb.release(now) // a lost label is a row the pipeline cannot use; it never fails a request
			}
		}
	}()
	return fb, nil
}

// record queues a transaction's label; it arrives after the delay.
func (fb *feedback) record(id string, fraud bool) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.due = append(fb.due, dueLabel{id, fraud, time.Now().Add(fb.delay)})
}

// release appends the labels due by now, whole lines in one write, so a
// reader never sees half a line, and posts them to the labels endpoint
// as one batch ({"labels": [{"id": "tx-42", "label": true}, …]}).
func (fb *feedback) release(now time.Time) error {
	fb.mu.Lock()
	n := 0
	for n < len(fb.due) && !fb.due[n].at.After(now) {
		n++
	}
	if n == 0 {
		fb.mu.Unlock()
		return nil
	}
	var b []byte
	post := []byte(`{"labels":[`)
	for i, l := range fb.due[:n] {
		b = append(b, `{"id":`...)
		b = strconv.AppendQuote(b, l.id)
		b = append(b, `,"fraud":`...)
		b = strconv.AppendBool(b, l.fraud)
		b = append(b, "}\n"...)
		if i > 0 {
			post = append(post, ',')
		}
		post = append(post, `{"id":`...)
		post = strconv.AppendQuote(post, l.id)
		post = append(post, `,"label":`...)
		post = strconv.AppendBool(post, l.fraud)
		post = append(post, '}')
	}
	post = append(post, "]}"...)
	fb.due = fb.due[n:]
	_, err := fb.f.Write(b)
	fb.mu.Unlock()
	return errors.Join(err, fb.send(post))
}

// send posts a batch of labels; a feed that cannot reach the server
// loses the batch (the file keeps it), as a chargeback feed would retry
// later.
func (fb *feedback) send(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, fb.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+fb.token)
	resp, err := fb.post.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("labels endpoint: %s", resp.Status)
	}
	return nil
}

// close stops the goroutine and closes the file. Labels not yet due are
// dropped: the story is over before their chargebacks would come.
func (fb *feedback) close() error {
	close(fb.stopc)
	<-fb.done
	fb.post.CloseIdleConnections()
	return fb.f.Close()
}

// labelReader follows the feedback file: each read takes the complete
// lines appended since the last, through rowio's JSON Lines reader.
type labelReader struct {
	path string
	off  int64
}

var labelFields = []rowio.Field{{Name: "id", Type: serving.Bytes}, {Name: "fraud", Type: serving.Bool}}

// read adds the labels that arrived since the last read to into.
func (lr *labelReader) read(into map[string]bool) error {
	f, err := os.Open(lr.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, lr.off, 1<<40))
	if err != nil {
		return err
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1] // a line still being written waits for the next read
	if len(b) == 0 {
		return nil
	}
	r, err := rowio.NewReader(rowio.JSONL, bytes.NewReader(b), int64(len(b)), labelFields)
	if err != nil {
		return err
	}
	defer r.Close()
	var fr rowio.Frame
	for {
		if err := r.Read(&fr, 4096); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		ids, _ := fr.Col("id")
		frauds, _ := fr.Col("fraud")
		for i, id := range ids.Data.([][]byte) {
			into[string(id)] = frauds.Data.([]bool)[i]
		}
	}
	lr.off += int64(len(b))
	return nil
}
