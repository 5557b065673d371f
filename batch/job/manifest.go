package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/serving"
)

// ManifestName is the manifest's file name in an output directory.
const ManifestName = "_manifest.json"

// Manifest records what a job has done, so that a run started again
// after a crash skips it. It is rewritten atomically (atomicfile.WriteFile)
// after every group of parts is committed: a part's files are renamed
// into place first, then the manifest names them, so a part the manifest
// names is whole, and a part it does not name is redone (its files
// replaced).
type Manifest struct {
	Version int `json:"version"`
	// What the job is: a run whose settings differ refuses to resume it.
	Input        string `json:"input"` // base name
	InputSize    int64  `json:"input_size"`
	InputFormat  string `json:"input_format"`
	OutputFormat string `json:"output_format"`
	PartRows     int64  `json:"part_rows"`
	ShardIndex   int    `json:"shard_index"`
	ShardCount   int    `json:"shard_count"`
	// Parts are the committed parts, by part number.
	Parts []Part `json:"parts"`
	// Complete is set when the input has been read to its end and every
	// part of this shard committed.
	Complete bool      `json:"complete"`
	Updated  time.Time `json:"updated"`
}

// Part is one committed part: input rows [Start, End), of which Rows
// were written to File and Errors to DeadLetter (either file name is
// empty when it has no row).
type Part struct {
	Part       int64  `json:"part"`
	Start      int64  `json:"start"`
	End        int64  `json:"end"`
	Rows       int64  `json:"rows"`
	Errors     int64  `json:"errors"`
	File       string `json:"file,omitempty"`
	DeadLetter string `json:"dead_letter,omitempty"`
}

const manifestVersion = 1

// ReadManifest reads the manifest in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("batch/job: %s: %w", filepath.Join(dir, ManifestName), err)
	}
	return &m, nil
}

// Totals are the rows written and failed over the committed parts.
func (m *Manifest) Totals() (rows, errs int64) {
	for _, p := range m.Parts {
		rows += p.Rows
		errs += p.Errors
	}
	return rows, errs
}

func (m *Manifest) add(p Part) {
	i, _ := slices.BinarySearchFunc(m.Parts, p.Part, func(x Part, p int64) int { return int(x.Part - p) })
	m.Parts = slices.Insert(m.Parts, i, p)
}

func (m *Manifest) save(dir string) error {
	m.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestName), append(b, '\n'))
}

// openManifest loads the manifest of dir and checks that it describes
// the same job as want, or returns want for a new job.
func openManifest(dir string, want *Manifest, resume bool) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		return want, nil // saved with the first parts committed
	}
	if err != nil {
		return nil, err
	}
	if !resume {
		return nil, serving.Errorf(serving.InvalidArgument, "batch/job: %s already holds a job (%s): resume it or choose another output", dir, ManifestName)
	}
	type id struct {
		Version      int
		Input        string
		Size         int64
		In, Out      string
		PartRows     int64
		Shard, Count int
	}
	got := id{m.Version, m.Input, m.InputSize, m.InputFormat, m.OutputFormat, m.PartRows, m.ShardIndex, m.ShardCount}
	exp := id{want.Version, want.Input, want.InputSize, want.InputFormat, want.OutputFormat, want.PartRows, want.ShardIndex, want.ShardCount}
	if got != exp {
		return nil, serving.Errorf(serving.InvalidArgument, "batch/job: %s holds another job (%+v, this run is %+v): use another output, or the same settings", dir, got, exp)
	}
	return m, nil
}
