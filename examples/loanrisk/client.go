package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
)

// client posts JSON to the server, as any HTTP client would.
type client struct {
	base string
	http *http.Client
}

func (c *client) post(ctx context.Context, path string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// applicant is the one application the real-time calls send.
var applicant = map[string]any{"age": 42, "income": 38000, "n_loans": 2, "purpose": "car"}

type v2Input struct {
	Name     string  `json:"name"`
	DataType string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
	Data     []any   `json:"data"`
}

type v2Output struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type v2Request struct {
	Inputs  []v2Input  `json:"inputs"`
	Outputs []v2Output `json:"outputs,omitempty"`
}

// v2Body is a V2 request for one applicant, one input per column; with
// classify set, it asks for that output's top 2 classes (Triton's
// classification extension).
func v2Body(app map[string]any, classify string) []byte {
	r := v2Request{Inputs: []v2Input{
		{"age", "FP32", []int64{1, 1}, []any{app["age"]}},
		{"income", "FP32", []int64{1, 1}, []any{app["income"]}},
		{"n_loans", "INT64", []int64{1, 1}, []any{app["n_loans"]}},
		{"purpose", "BYTES", []int64{1, 1}, []any{app["purpose"]}},
	}}
	if classify != "" {
		r.Outputs = []v2Output{{Name: classify, Parameters: map[string]any{"classification": 2}}}
	}
	b, _ := json.Marshal(r)
	return b
}

// v2Batch is a V2 request for many applications. JSON has no NaN: a blank
// age or income is sent as the string "NaN", which V2 servers take.
func v2Batch(a applications) []byte {
	n := int64(len(a.id))
	floats := func(v []float32) []any {
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = x
			if math.IsNaN(float64(x)) {
				out[i] = "NaN"
			}
		}
		return out
	}
	loans, purpose := make([]any, n), make([]any, n)
	for i := range a.id {
		loans[i], purpose[i] = a.nLoans[i], a.purpose[i]
	}
	b, _ := json.Marshal(v2Request{Inputs: []v2Input{
		{"age", "FP32", []int64{n, 1}, floats(a.age)},
		{"income", "FP32", []int64{n, 1}, floats(a.income)},
		{"n_loans", "INT64", []int64{n, 1}, loans},
		{"purpose", "BYTES", []int64{n, 1}, purpose},
	}})
	return b
}
