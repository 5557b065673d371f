package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/servekit/servekit/beam/scoring"
)

func init() {
	register.DoFn3x0[string, func(scoring.Row), func(string)](&jsonlFn{})
	register.DoFn3x0[string, func(scoring.Row), func(string)](&csvFn{})
	register.Emitter1[scoring.Row]()
	register.Emitter1[string]()
	register.Function1x1(resultJSON)
	register.Function1x1(failureJSON)
}

// jsonlFn parses JSONL lines into rows; a line it cannot parse goes to
// the dead letter whole, with the reason.
type jsonlFn struct {
	Key    string   `json:"key"`
	Inputs []string `json:"inputs,omitempty"`
}

func (fn *jsonlFn) ProcessElement(line string, emit func(scoring.Row), bad func(string)) {
	if strings.TrimSpace(line) == "" {
		return
	}
	row, err := fn.parse(line)
	if err != nil {
		bad(lineFailure(line, err))
		return
	}
	emit(row)
}

func (fn *jsonlFn) parse(line string) (scoring.Row, error) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		return scoring.Row{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var row scoring.Row
	if fn.Key != "" {
		switch k := obj[fn.Key].(type) {
		case string:
			row.Key = k
		case float64:
			row.Key = strconv.FormatFloat(k, 'f', -1, 64)
		case nil:
			return row, fmt.Errorf("no key field %q", fn.Key)
		default:
			return row, fmt.Errorf("key field %q is not a string or a number", fn.Key)
		}
	}
	for name, v := range obj {
		if name == fn.Key || len(fn.Inputs) > 0 && !slices.Contains(fn.Inputs, name) {
			continue
		}
		nums, strs, err := flatten(v, nil, nil)
		if err != nil {
			return row, fmt.Errorf("field %q: %w", name, err)
		}
		if nums != nil && strs != nil {
			return row, fmt.Errorf("field %q mixes numbers and strings", name)
		}
		if strs != nil {
			if row.Strings == nil {
				row.Strings = map[string][]string{}
			}
			row.Strings[name] = strs
			continue
		}
		if row.Inputs == nil {
			row.Inputs = map[string][]float64{}
		}
		row.Inputs[name] = nums
	}
	return row, nil
}

// flatten appends a JSON value's leaves in row-major order.
func flatten(v any, nums []float64, strs []string) ([]float64, []string, error) {
	switch v := v.(type) {
	case float64:
		return append(nums, v), strs, nil
	case bool:
		if v {
			return append(nums, 1), strs, nil
		}
		return append(nums, 0), strs, nil
	case string:
		return nums, append(strs, v), nil
	case []any:
		if nums == nil && strs == nil && len(v) == 0 {
			return []float64{}, nil, nil // an empty row of a dynamic input
		}
		var err error
		for _, e := range v {
			if nums, strs, err = flatten(e, nums, strs); err != nil {
				return nil, nil, err
			}
		}
		return nums, strs, nil
	case nil:
		return nil, nil, fmt.Errorf("null is not a value")
	}
	return nil, nil, fmt.Errorf("an object is not a model input (list the input fields in --inputs)")
}

// csvFn parses CSV lines into rows of one input. Header, the first line of
// the first file, is read when the pipeline is built, so a bad column
// name fails at once instead of on every worker.
type csvFn struct {
	Header  []string `json:"header"`
	Key     int      `json:"key"`     // column index of the key, -1 for none
	Columns []int    `json:"columns"` // column indexes of the values, in input order
	Names   []string `json:"names"`   // their names, for errors
	Input   string   `json:"input"`
}

func newCSVFn(ctx context.Context, c *config) (*csvFn, error) {
	header, err := csvHeader(ctx, c.input)
	if err != nil {
		return nil, err
	}
	fn := &csvFn{Header: header, Key: -1, Input: c.modelInput}
	if c.key != "" {
		if fn.Key = slices.Index(header, c.key); fn.Key < 0 {
			return nil, fmt.Errorf("score: key column %q is not in the CSV header %v", c.key, header)
		}
	}
	names := c.columns
	if len(names) == 0 {
		for i, h := range header {
			if i != fn.Key {
				names = append(names, h)
			}
		}
	}
	for _, n := range names {
		i := slices.Index(header, n)
		if i < 0 {
			return nil, fmt.Errorf("score: column %q is not in the CSV header %v", n, header)
		}
		fn.Columns = append(fn.Columns, i)
	}
	fn.Names = names
	return fn, nil
}

// csvHeader reads the first line of the first file that glob matches.
func csvHeader(ctx context.Context, glob string) ([]string, error) {
	fs, err := filesystem.New(ctx, glob)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	files, err := fs.List(ctx, glob)
	if err != nil {
		return nil, fmt.Errorf("score: %s: %w", glob, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("score: no file matches %s", glob)
	}
	slices.Sort(files)
	r, err := fs.OpenRead(ctx, files[0])
	if err != nil {
		return nil, err
	}
	defer r.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if line == "" && err != nil {
		return nil, fmt.Errorf("score: %s: no CSV header: %w", files[0], err)
	}
	header, err := parseCSV(line)
	if err != nil {
		return nil, fmt.Errorf("score: %s: CSV header: %w", files[0], err)
	}
	return header, nil
}

func parseCSV(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	return r.Read()
}

func (fn *csvFn) ProcessElement(line string, emit func(scoring.Row), bad func(string)) {
	if strings.TrimSpace(line) == "" {
		return
	}
	fields, err := parseCSV(line)
	if err == nil && slices.Equal(fields, fn.Header) {
		return // every file's header line
	}
	if err == nil && len(fields) != len(fn.Header) {
		err = fmt.Errorf("%d fields, the header has %d", len(fields), len(fn.Header))
	}
	if err != nil {
		bad(lineFailure(line, err))
		return
	}
	row := scoring.Row{Inputs: map[string][]float64{fn.Input: make([]float64, len(fn.Columns))}}
	if fn.Key >= 0 {
		row.Key = fields[fn.Key]
	}
	for i, c := range fn.Columns {
		v, err := strconv.ParseFloat(strings.TrimSpace(fields[c]), 64)
		if err != nil {
			bad(lineFailure(line, fmt.Errorf("column %q: %q is not a number", fn.Names[i], fields[c])))
			return
		}
		row.Inputs[fn.Input][i] = v
	}
	emit(row)
}
