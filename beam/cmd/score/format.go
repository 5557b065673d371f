package main

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/servekit/servekit/beam/scoring"
)

// The output is written by hand rather than with encoding/json, which
// refuses NaN and ±Inf: a model may well answer NaN, and the row must not
// be lost for it. Keys are sorted so equal rows give equal lines.

func resultJSON(r scoring.Result) string {
	b := []byte(`{"key":`)
	b = appendString(b, r.Key)
	b = append(b, `,"model":`...)
	b = appendString(b, r.Model)
	if r.Version != "" {
		b = append(b, `,"version":`...)
		b = appendString(b, r.Version)
	}
	b = appendValues(b, "outputs", r.Outputs, r.Strings)
	return string(append(b, '}'))
}

func failureJSON(f scoring.Failure) string {
	b := []byte(`{"key":`)
	b = appendString(b, f.Row.Key)
	b = append(b, `,"code":`...)
	b = appendString(b, f.Code)
	b = append(b, `,"reason":`...)
	b = appendString(b, f.Reason)
	b = appendValues(b, "inputs", f.Row.Inputs, f.Row.Strings)
	return string(append(b, '}'))
}

// lineFailure is the dead letter of an input line that is not a row.
func lineFailure(line string, err error) string {
	b := []byte(`{"code":"invalid_argument","reason":`)
	b = appendString(b, err.Error())
	b = append(b, `,"line":`...)
	b = appendString(b, line)
	return string(append(b, '}'))
}

// appendValues writes numbers under name and strings under "strings".
func appendValues(b []byte, name string, nums map[string][]float64, strs map[string][]string) []byte {
	if len(nums) > 0 {
		b = append(b, `,"`+name+`":{`...)
		for i, k := range slices.Sorted(maps.Keys(nums)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ":["...)
			for j, v := range nums[k] {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFloat(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(strs) > 0 {
		b = append(b, `,"strings":{`...)
		for i, k := range slices.Sorted(maps.Keys(strs)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			s, _ := json.Marshal(strs[k]) // strings always marshal
			b = append(b, s...)
		}
		b = append(b, '}')
	}
	return b
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
