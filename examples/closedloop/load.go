package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tally is the load generator's count of what callers saw.
type tally struct {
	Requests, Failed int64
	// NonFinite answers were 200s whose score was NaN or ±Inf: not a
	// failed request, but an answer nobody can use.
	NonFinite  int64
	ByVersion  map[string]int64     // model_version of the answers
	Last       map[string]time.Time // when each version last answered
	FirstError string
	latencies  []time.Duration
}

// P99 is the callers' 99th percentile latency, HTTP round trip included.
func (t tally) P99() time.Duration {
	if len(t.latencies) == 0 {
		return 0
	}
	l := slices.Clone(t.latencies)
	slices.Sort(l)
	return l[(len(l)*99+99)/100-1]
}

func (t tally) byVersion() string {
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(t.ByVersion)) {
		parts = append(parts, fmt.Sprintf("v%s %d", v, t.ByVersion[v]))
	}
	return strings.Join(parts, ", ")
}

// loadGen is the card network: callers goroutines send transactions of
// the simulated world to the inference API at a steady total rate, as
// HTTP V2 requests with an id ("tx-N") and the card as X-Routing-Key, so
// a card stays on one version during a canary. After shiftAfter requests
// the world drifts. Each answered transaction's truth goes to the
// feedback store, which releases it late, as a chargeback. A share of
// requests repeats the caller's previous transaction under a new id (a
// terminal retrying an authorisation), which the response cache answers.
type loadGen struct {
	url        string
	shiftAfter int64
	fb         *feedback
	tl         *timeline
	client     *http.Client
	n          atomic.Int64 // requests started
	stopc      chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	t          tally // guarded by mu
}

func startLoad(o *options, base string, fb *feedback, tl *timeline) *loadGen {
	l := &loadGen{
		url: base + "/v2/models/" + modelName + "/infer", shiftAfter: int64(o.shiftAfter), fb: fb, tl: tl,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.callers}},
		stopc:  make(chan struct{}),
		t:      tally{ByVersion: map[string]int64{}, Last: map[string]time.Time{}},
	}
	every := time.Duration(float64(o.callers) / o.rate * float64(time.Second))
	for c := range o.callers {
		w := newWorld(o.seed + 100 + uint64(c))
		l.wg.Go(func() { l.caller(w, every) })
	}
	return l
}

// caller sends one transaction every period, without catching up after a
// slow answer (a burst would only measure the generator).
func (l *loadGen) caller(w *world, every time.Duration) {
	next := time.Now()
	var prev [numFeatures]float32
	var prevFraud, havePrev bool
	for {
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-l.stopc:
				t.Stop()
				return
			case <-t.C:
			}
		} else {
			select {
			case <-l.stopc:
				return
			default:
			}
		}
		if next = next.Add(every); next.Before(time.Now()) {
			next = time.Now()
		}
		seq := l.n.Add(1)
		r := before
		if seq > l.shiftAfter {
			r = after
			if seq == l.shiftAfter+1 {
				l.tl.add(time.Now(), evShift, "the world drifts: a fraud wave of foreign, far-from-home payments on young accounts (from request %d on)", seq)
			}
		}
		x, fraud := prev, prevFraud
		if !havePrev || w.rng.Float64() >= 0.05 {
			x, fraud = w.draw(r)
		}
		prev, prevFraud, havePrev = x, fraud, true
		id := "tx-" + strconv.FormatInt(seq, 10)
		card := "card-" + strconv.Itoa(w.rng.IntN(5000))
		start := time.Now()
		version, score, err := l.send(id, card, x)
		l.count(version, score, time.Since(start), err)
		if err == nil {
			l.fb.record(id, fraud)
		}
	}
}

// send posts one transaction and returns the version that answered and
// its score.
func (l *loadGen) send(id, card string, x [numFeatures]float32) (string, float64, error) {
	b := []byte(`{"id":`)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[`...)
	for i, v := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	b = append(b, "]}]}"...)
	req, err := http.NewRequest(http.MethodPost, l.url, bytes.NewReader(b))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Routing-Key", card)
	resp, err := l.client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var answer struct {
		ID           string `json:"id"`
		ModelVersion string `json:"model_version"`
		Outputs      []struct {
			Name string `json:"name"`
			Data []any  `json:"data"` // numbers, or "NaN" / "Infinity" strings
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", 0, err
	}
	if answer.ID != id || len(answer.Outputs) != 1 || len(answer.Outputs[0].Data) != 1 {
		return "", 0, fmt.Errorf("unexpected answer to %s: %s", id, body)
	}
	score := math.NaN()
	if f, ok := answer.Outputs[0].Data[0].(float64); ok {
		score = f
	}
	return answer.ModelVersion, score, nil
}

func (l *loadGen) count(version string, score float64, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Requests++
	l.t.latencies = append(l.t.latencies, d)
	if err != nil {
		l.t.Failed++
		if l.t.FirstError == "" {
			l.t.FirstError = err.Error()
		}
		return
	}
	l.t.ByVersion[version]++
	l.t.Last[version] = time.Now()
	if math.IsNaN(score) || math.IsInf(score, 0) {
		l.t.NonFinite++
	}
}

// stop ends the callers, waits for them and returns the tally.
func (l *loadGen) stop() tally {
	close(l.stopc)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.t
	t.ByVersion, t.Last = maps.Clone(l.t.ByVersion), maps.Clone(l.t.Last)
	t.latencies = slices.Clone(l.t.latencies)
	return t
}
