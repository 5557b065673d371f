package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/webhook"
)

// retrainer stands for a retraining pipeline behind a webhook: the drift
// monitor POSTs its alerts to it (webhook.Sender), and on an alarm for the
// newest version it fits a successor on the logged recent traffic joined
// with the labels that have come back, and writes it into the model
// repository, which loads it. It never touches the server: the repository
// is the only hand-over, as between a training cluster and the serving
// fleet.
//
// Policy, as a pipeline's owner would set it:
//   - One retraining per alarm episode: alerts for a version that already
//     has a successor, "cleared" alerts, and alerts while a retraining
//     runs are acknowledged and ignored (the webhook retries what is not
//     acknowledged, so every alert gets a 2xx).
//   - Training data: the labelled rows logged since the start of the
//     window that raised the alarm (the traffic known to have drifted),
//     at least trainRows of them; it waits for late labels until it has
//     them. The latest quarter, by time, is held out: both versions are
//     scored on it, as they would meet tomorrow's traffic.
type retrainer struct {
	o    *options
	hist *history
	tl   *timeline
	url  string
	key  []byte // the webhook's signing key: an alert it did not sign is refused
	srv  *http.Server
	done chan struct{} // the server's goroutine

	ctx    context.Context // of the training goroutine; cancel stops it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	busy   bool   // guarded by mu: a retraining runs
	result *model // guarded by mu: the last version written
}

// model is what a retraining produced.
type model struct {
	Version      string
	Rows         int
	AUCOld       float64 // the alarmed version's AUC on the held-out rows
	AUCNew       float64 // the new fit's
	HeldOut      int
	Since        time.Time
	OldVersion   string
	BrokenOnDisk bool
}

func startRetrainer(o *options, hist *history, tl *timeline) (*retrainer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rt := &retrainer{o: o, hist: hist, tl: tl, url: "http://" + ln.Addr().String() + "/hooks/drift", key: make([]byte, 32), done: make(chan struct{})}
	rand.Read(rt.key) // shared with the server's webhook, in process
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/drift", rt.alert)
	rt.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(rt.done)
		_ = rt.srv.Serve(ln) // ends with ErrServerClosed on close
	}()
	return rt, nil
}

// alert is the webhook's endpoint. A retraining is an expensive action
// that ends in a new model: only an alert signed with the webhook's key,
// recently, starts one (webhook.Verify).
func (rt *retrainer) alert(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]string{"error": "retrainer: " + msg})
		w.Write(append(b, '\n'))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err != nil {
		refuse(http.StatusBadRequest, "reading the alert: "+err.Error())
		return
	}
	if err := webhook.Verify(rt.key, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0); err != nil {
		refuse(http.StatusUnauthorized, err.Error())
		return
	}
	var a drift.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		refuse(http.StatusBadRequest, "malformed alert: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusAccepted)
	// A feature's drift starts a retraining; an alert that raises only
	// data-quality or multivariate checks does not (broken inputs call
	// for a fix upstream, not a new model).
	if a.Kind != drift.AlertRaised || len(a.Raised) == 0 || a.Model != modelName {
		return
	}
	next, err := nextVersion(rt.o.repoDir())
	if err != nil {
		rt.tl.say("retrainer: %v", err)
		return
	}
	if v, _ := strconv.Atoi(a.Version); strconv.Itoa(v+1) != next {
		return // the alarmed version already has a successor
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.busy || rt.ctx.Err() != nil {
		return
	}
	rt.busy = true
	rt.wg.Go(func() {
		defer func() {
			rt.mu.Lock()
			rt.busy = false
			rt.mu.Unlock()
		}()
		if err := rt.retrain(rt.ctx, a, next); err != nil && rt.ctx.Err() == nil {
			rt.tl.say("retrainer: %v", err)
		}
	})
}

// retrain waits for enough labelled drifted traffic, fits, checks and
// writes the next version.
func (rt *retrainer) retrain(ctx context.Context, a drift.Alert, version string) error {
	since := a.Result.Window.Start
	rt.tl.say("retrainer: alarm on %s v%s received; waiting for %d labelled transactions logged since %.1fs",
		a.Model, a.Version, rt.o.trainRows, rt.tl.rel(since))
	var rows []labelled
	for {
		if err := rt.hist.refresh(); err != nil {
			return err
		}
		rows = rt.hist.labelled(func(r loggedRow) bool { return !r.At.Before(since) && r.Version == a.Version })
		if len(rows) >= rt.o.trainRows {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	rows = rows[:rt.o.trainRows]
	cut := len(rows) * 3 / 4
	xs, ys := make([][numFeatures]float32, len(rows)), make([]bool, len(rows))
	oldScores := make([]float64, len(rows)-cut)
	for i, r := range rows {
		xs[i], ys[i] = r.X, r.Fraud
		if i >= cut {
			oldScores[i-cut] = float64(r.Score) // what the alarmed version answered
		}
	}
	m, err := fit(xs[:cut], ys[:cut], defaultTrain)
	if err != nil {
		return err
	}
	trainedAt := time.Now() // before the version is on disk, which the repository may load at once
	prof, err := buildProfile(version, xs[:cut], m)
	if err != nil {
		return err
	}
	res := &model{Version: version, Rows: cut, HeldOut: len(rows) - cut, Since: since, OldVersion: a.Version,
		AUCOld: auc(oldScores, ys[cut:]), AUCNew: aucOf(m, xs[cut:], ys[cut:])}
	onDisk := m
	if rt.o.breakV2 {
		// A fit that diverged, exported anyway: the model loads, warms up
		// and answers — NaN. Only guards that look at the answers catch it.
		onDisk.Bias = math.NaN()
		res.BrokenOnDisk = true
	}
	ref, err := qualityReference(version, m, xs[cut:], ys[cut:])
	if err != nil {
		return err
	}
	dir, err := writeVersion(rt.o.repoDir(), version, onDisk, prof, ref)
	if err != nil {
		return fmt.Errorf("write version %s: %w", version, err)
	}
	rt.mu.Lock()
	rt.result = res
	rt.mu.Unlock()
	broken := ""
	if res.BrokenOnDisk {
		broken = " — broken on purpose (-break-v2): its bias is NaN on disk"
	}
	rt.tl.add(trainedAt, evTrained, "v%s trained on %d labelled transactions logged since %.1fs: AUC on the %d held out: v%s %.3f, v%s %.3f; written to %s%s",
		version, res.Rows, rt.tl.rel(since), res.HeldOut, a.Version, res.AUCOld, version, res.AUCNew, dir, broken)
	return nil
}

// last returns what the last retraining wrote, or nil.
func (rt *retrainer) last() *model {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.result
}

// close stops the endpoint and any retraining in progress.
func (rt *retrainer) close() error {
	rt.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rt.srv.Shutdown(ctx)
	<-rt.done
	rt.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
