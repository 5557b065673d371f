package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const inferUsage = "servekit infer --model-name NAME (--data FILE|-|JSON | --input [NAME=]FILE.npy|FILE.csv ...) [flags]"

// inferOptions are servekit infer's flags.
type inferOptions struct {
	url      string
	model    string
	version  string
	data     string
	inputs   listFlag
	datatype string
	timeout  time.Duration
	maxBytes int64
}

// infer sends one inference request to a V2 server over REST and prints
// its JSON answer on stdout. The request is a V2 JSON body as given
// (--data: a file, - for stdin, or the JSON itself), or is made from
// tensors in files (--input: NumPy .npy, or CSV rows of numbers as a
// [rows, columns] tensor). Every read is bounded by --max-bytes: the
// body, each file, and the answer. A non-2xx answer is printed on
// stderr and is an error (exit status 1), so scripts can test it.
//
// The model's name is --model-name rather than --model, which serve
// takes as NAME=PATH: a container that sets $SERVEKIT_MODEL for serve
// must not change what infer asks.
func infer(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o := &inferOptions{}
	f := newFlags("infer", inferUsage, stdout)
	f.str(&o.url, "url", "http://127.0.0.1:8000", "the server's HTTP root (servekit serve --http-port, Triton's 8000)")
	f.str(&o.model, "model-name", "", "the `MODEL` to ask")
	f.str(&o.version, "model-version", "", "a `VERSION` of it (default: the server's choice, the latest)")
	f.str(&o.data, "data", "", "the request: a V2 JSON body in a `FILE`, - for stdin, or the JSON itself (starting with {)")
	f.value(&o.inputs, "input", "an input tensor from a file, `[NAME=]FILE` with FILE .npy (its dtype and shape) or .csv (rows of numbers: shape [rows, columns], --datatype); repeatable; without NAME, the model's only input")
	f.str(&o.datatype, "datatype", "FP32", "the V2 datatype of CSV inputs: FP32, FP64, INT32 or INT64")
	f.duration(&o.timeout, "timeout", 30*time.Second, "the whole request's time limit, sent to the server as its timeout too")
	f.int64(&o.maxBytes, "max-bytes", 64<<20, "largest request body, input file or answer in bytes")
	if err := f.parse(args); err != nil {
		return usageError{err}
	}
	switch {
	case o.model == "":
		return usageError{errors.New("infer: --model-name is required")}
	case (o.data == "") == (len(o.inputs) == 0):
		return usageError{errors.New("infer: give --data (a JSON request) or --input (tensors from files), one of the two")}
	case o.maxBytes <= 0:
		return usageError{errors.New("infer: --max-bytes must be positive")}
	case o.timeout <= 0:
		return usageError{errors.New("infer: --timeout must be positive")}
	}
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageError{fmt.Errorf("infer: --url %q: want http://HOST:PORT", o.url)}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := &client{base: base.String(), http: &http.Client{}, maxBytes: o.maxBytes}

	var body []byte
	if o.data != "" {
		if body, err = requestBody(o.data, stdin, o.maxBytes); err != nil {
			return err
		}
	} else if body, err = c.tensorRequest(ctx, o); err != nil {
		return err
	}
	path := "/v2/models/" + url.PathEscape(o.model)
	if o.version != "" {
		path += "/versions/" + url.PathEscape(o.version)
	}
	status, answer, err := c.do(ctx, http.MethodPost, path+"/infer", body, o.timeout)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		stderr.Write(answer)
		if len(answer) > 0 && answer[len(answer)-1] != '\n' {
			fmt.Fprintln(stderr)
		}
		return fmt.Errorf("infer: %s answered %d %s", c.base+path+"/infer", status, http.StatusText(status))
	}
	stdout.Write(answer)
	if len(answer) > 0 && answer[len(answer)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	return nil
}

// requestBody is --data: the JSON itself, stdin, or a file; it must be
// one JSON object (the server says what is wrong with its fields; a typo
// that makes it no JSON at all is caught here, with the file named).
func requestBody(data string, stdin io.Reader, max int64) ([]byte, error) {
	var b []byte
	var err error
	what := data
	switch {
	case strings.HasPrefix(strings.TrimSpace(data), "{"):
		b, what = []byte(data), "--data"
	case data == "-":
		b, err = readBounded(stdin, max, "stdin")
		what = "stdin"
	default:
		b, err = readFile(data, max)
	}
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("infer: %s is not a JSON object: %v", what, err)
	}
	return b, nil
}

// inferInput is one input of a V2 JSON request.
type inferInput struct {
	Name     string `json:"name"`
	Shape    []int  `json:"shape"`
	Datatype string `json:"datatype"`
	Data     any    `json:"data"`
}

// tensorRequest builds a V2 JSON request from the --input files.
func (c *client) tensorRequest(ctx context.Context, o *inferOptions) ([]byte, error) {
	var req struct {
		Inputs []inferInput `json:"inputs"`
	}
	for _, in := range o.inputs {
		name, path, named := strings.Cut(in, "=")
		if !named {
			path = in
			var err error
			if name, err = c.onlyInput(ctx, o); err != nil {
				return nil, err
			}
		}
		b, err := readFile(path, o.maxBytes)
		if err != nil {
			return nil, err
		}
		var t inferInput
		switch ext := strings.ToLower(filepath.Ext(path)); ext {
		case ".npy":
			t, err = decodeNPY(b)
		case ".csv":
			t, err = decodeCSV(b, o.datatype)
		default:
			err = fmt.Errorf("want a .npy or .csv file, not %q", ext)
		}
		if err != nil {
			return nil, fmt.Errorf("infer: --input %s: %w", in, err)
		}
		t.Name = name
		req.Inputs = append(req.Inputs, t)
	}
	b, err := json.Marshal(req)
	if err != nil { // NaN or Inf in a file: JSON has no spelling for them
		return nil, fmt.Errorf("infer: %w (the V2 JSON protocol cannot carry NaN or Inf)", err)
	}
	return b, nil
}

// onlyInput is the model's one input, from its metadata: --input FILE
// without a name is unambiguous only then.
func (c *client) onlyInput(ctx context.Context, o *inferOptions) (string, error) {
	path := "/v2/models/" + url.PathEscape(o.model)
	if o.version != "" {
		path += "/versions/" + url.PathEscape(o.version)
	}
	status, b, err := c.do(ctx, http.MethodGet, path, nil, o.timeout)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("infer: the metadata of %q (to name the input): %d %s", o.model, status, bytes.TrimSpace(b))
	}
	var md struct {
		Inputs []struct {
			Name string `json:"name"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return "", fmt.Errorf("infer: the metadata of %q: %v", o.model, err)
	}
	if len(md.Inputs) != 1 {
		names := make([]string, len(md.Inputs))
		for i, in := range md.Inputs {
			names[i] = in.Name
		}
		return "", fmt.Errorf("infer: model %q has inputs %v: name each, --input NAME=FILE", o.model, names)
	}
	return md.Inputs[0].Name, nil
}

// client is the HTTP side of infer.
type client struct {
	base     string
	http     *http.Client
	maxBytes int64
}

// do sends one request and reads at most maxBytes of the answer.
func (c *client) do(ctx context.Context, method, path string, body []byte, timeout time.Duration) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The deadline, so the server stops working on an answer nobody
	// waits for (servekit's httpapi reads Timeout as a Go duration).
	req.Header.Set("Timeout", timeout.String())
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("infer: %w", err)
	}
	defer resp.Body.Close()
	b, err := readBounded(resp.Body, c.maxBytes, "the answer")
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// readFile reads a whole file of at most max bytes, refusing a larger one
// before reading it (its size is known) and while reading it (it may grow,
// or be a pipe).
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > max {
		return nil, fmt.Errorf("infer: %s: %d bytes, more than --max-bytes %d", path, st.Size(), max)
	}
	return readBounded(f, max, path)
}

// readBounded reads r to its end, or fails once it has more than max
// bytes.
func readBounded(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("infer: reading %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("infer: %s: more than --max-bytes %d", what, max)
	}
	return b, nil
}
