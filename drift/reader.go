package drift

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// ReadCSV adds the rows of a CSV file whose header names the columns: each
// feature takes the column of its name (other columns are ignored; a
// missing one is an error). An empty cell is a missing value; a numerical
// cell must parse as a number. Categorical cells are taken as text: a
// category read from a numeric tensor at serving time is its shortest
// decimal form ("3", "0.5", as strconv.FormatFloat(v, 'g', -1, 64) writes
// it), so write numeric categories that way, or add them with Add.
func (b *ProfileBuilder) ReadCSV(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("drift: read CSV header: %w", err)
	}
	col := make([]int, len(b.features))
	for i := range col {
		col[i] = -1
	}
	for j, name := range header {
		if i, ok := b.index[name]; ok && col[i] < 0 {
			col[i] = j
		}
	}
	for i, c := range col {
		if c < 0 {
			return serving.Errorf(serving.InvalidArgument, "drift: the CSV has no column %q (header %q)", b.features[i].Name, header)
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("drift: read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for i, c := range col {
			if err := b.addString(i, rec[c]); err != nil {
				return fmt.Errorf("%w (CSV line %d)", err, line)
			}
		}
		b.rows++
	}
}

// ReadJSONL adds the rows of a JSON Lines file: one object per line, each
// feature taking the member of its name. A missing member or null is a
// missing value; numbers, strings and booleans are accepted as categories
// (a number by its shortest decimal form, as requests' numbers are), and
// numbers, or strings holding one, as numerical values.
func (b *ProfileBuilder) ReadJSONL(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	for line := 1; ; line++ {
		var row map[string]any
		err := dec.Decode(&row)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("drift: read JSONL row %d: %w", line, err)
		}
		for i, f := range b.features {
			if err := b.addJSON(i, row[f.Name]); err != nil {
				return fmt.Errorf("%w (JSONL row %d)", err, line)
			}
		}
		b.rows++
	}
}

func (b *ProfileBuilder) addJSON(i int, v any) error {
	f := b.features[i]
	switch x := v.(type) {
	case nil:
		b.addMissing(i)
		return nil
	case json.Number:
		n, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "drift: feature %q: %s is out of range", f.Name, x)
		}
		b.addNumber(i, n)
		return nil
	case string:
		return b.addString(i, x)
	case bool:
		if f.Kind == Categorical {
			b.cats[i][strconv.FormatBool(x)]++
			return nil
		}
	}
	return serving.Errorf(serving.InvalidArgument, "drift: feature %q: %T is not a %s value", f.Name, v, f.Kind)
}
