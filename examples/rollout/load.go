package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadCounts is the load generator's tally.
type loadCounts struct {
	Requests, Failed int64
	ByVersion        map[string]int64 // model_version of the answers
	FirstError       string
}

func (c loadCounts) byVersion() string {
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(c.ByVersion)) {
		parts = append(parts, fmt.Sprintf("%s: %d", v, c.ByVersion[v]))
	}
	return strings.Join(parts, ", ")
}

// loadGen is a closed-loop load generator: callers goroutines, each sending
// one transaction at a time to the inference API as a random user of a
// thousand (the X-Routing-Key, so canary assignment is sticky per user),
// with think time between requests.
type loadGen struct {
	stopc  chan struct{}
	wg     sync.WaitGroup
	client *http.Client
	mu     sync.Mutex
	counts loadCounts // guarded by mu
}

func startLoad(base string, callers int, think time.Duration) *loadGen {
	l := &loadGen{
		stopc:  make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: callers}},
		counts: loadCounts{ByVersion: map[string]int64{}},
	}
	url := base + "/v2/models/fraud/infer"
	for c := range callers {
		l.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				version, err := l.send(url, rng)
				l.count(version, err)
				if think > 0 {
					select {
					case <-l.stopc:
						return
					case <-time.After(think):
					}
				}
			}
		})
	}
	return l
}

// send posts one transaction and returns the version that answered.
func (l *loadGen) send(url string, rng *rand.Rand) (string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(transaction(rng)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Routing-Key", "user-"+strconv.Itoa(rng.IntN(1000)))
	resp, err := l.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var answer struct {
		ModelVersion string `json:"model_version"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", err
	}
	return answer.ModelVersion, nil
}

// transaction is one card payment's 8 scaled features (see
// onnxbuild.FraudFeatures): z-scores for amount, distance, count and age,
// hour and merchant risk in [0, 1], card present 70 % of the time, foreign
// 10 %.
func transaction(rng *rand.Rand) []byte {
	bit := func(p float64) float64 {
		if rng.Float64() < p {
			return 1
		}
		return 0
	}
	f := []float64{rng.NormFloat64(), rng.Float64(), rng.Float64(), rng.NormFloat64(),
		rng.NormFloat64(), rng.NormFloat64(), bit(0.7), bit(0.1)}
	b := []byte(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[`)
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'g', 6, 32)
	}
	return append(b, "]}]}"...)
}

func (l *loadGen) count(version string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts.Requests++
	if err != nil {
		l.counts.Failed++
		if l.counts.FirstError == "" {
			l.counts.FirstError = err.Error()
		}
		return
	}
	l.counts.ByVersion[version]++
}

// snapshot returns the tally so far.
func (l *loadGen) snapshot() loadCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts
	c.ByVersion = maps.Clone(l.counts.ByVersion)
	return c
}

// stop ends the callers, waits for them and returns the final tally.
func (l *loadGen) stop() loadCounts {
	close(l.stopc)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	return l.snapshot()
}
