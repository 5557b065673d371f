package repository

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving/modelconfigpb"
)

// maxVersionFiles bounds the files hashed into one version's fingerprint.
const maxVersionFiles = 4096

// diskModel is one model directory as a scan found it.
type diskModel struct {
	dir    string  // resolved
	cfg    *Config // nil when cfgErr is set
	cfgErr error
	// loadHash covers the parts of the config a loaded version depends on
	// (all but the policy and traffic mode, plus the model file name):
	// changing them reloads every version.
	loadHash []byte
	versions []diskVersion // ascending
}

// diskVersion is one version directory: v is filled when the version can be
// handed to the loader; err says why not (no model file, a link out of the
// root).
type diskVersion struct {
	num int64
	v   Version
	err error
}

func (d diskVersion) name() string { return strconv.FormatInt(d.num, 10) }

// listModels returns the valid model directory names under the root;
// invalid names are passed to skip, hidden ones are ignored.
func listModels(root string, skip func(name, why string)) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // .git, editors' temp files, a ConfigMap's ..data
		}
		if err := checkName(name); err != nil {
			skip(name, "not a valid model name: "+err.Error())
			continue
		}
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue // a README or a stray file
		}
		names = append(names, name)
	}
	return names, nil
}

// scanModel reads <root>/<name>: its config and its version directories.
// An error means the model directory itself is unusable (gone, or a link
// out of the root); problems of one version are in that version's err.
func scanModel(root, name, defaultFile string, skip func(name, why string)) (*diskModel, error) {
	dir, err := resolveWithin(root, name)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	d := &diskModel{dir: dir}
	d.cfg, d.cfgErr = readConfig(dir, name)
	if d.cfgErr != nil {
		return d, nil
	}
	file := defaultFile
	if d.cfg.DefaultModelFilename != "" {
		file = d.cfg.DefaultModelFilename
	}
	d.loadHash = loadHash(d.cfg, file)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == ConfigFile || e.Name() == TritonConfigFile || (!e.IsDir() && e.Type()&fs.ModeSymlink == 0) {
			continue
		}
		if e.Name() == "warmup" || e.Name() == "configs" {
			continue // Triton's: warm-up data, and configurations by --model-config-name
		}
		num, err := parseVersion(e.Name())
		if err != nil {
			skip(name+"/"+e.Name(), "not a version directory: "+err.Error())
			continue
		}
		d.versions = append(d.versions, d.version(root, name, num, file))
	}
	slices.SortFunc(d.versions, func(a, b diskVersion) int { return cmp.Compare(a.num, b.num) })
	return d, nil
}

func (d *diskModel) version(root, model string, num int64, file string) diskVersion {
	dv := diskVersion{num: num}
	v := Version{Model: model, Version: dv.name(), ModelDir: d.dir, Parameters: d.cfg.Parameters, Config: d.cfg}
	var err error
	// Versions are resolved against the root, not the model directory:
	// a version may link to a shared directory elsewhere in the repository.
	if v.Dir, err = resolveWithin(root, model, v.Version); err != nil {
		dv.err = err
		dv.v.Fingerprint = hashOf(d.loadHash, []byte(err.Error()))
		return dv
	}
	if st, err := os.Stat(v.Dir); err != nil || !st.IsDir() {
		dv.err = fmt.Errorf("%s is not a directory", v.Dir)
	} else if v.Path, err = resolveWithin(root, model, v.Version, file); err != nil {
		dv.err = fmt.Errorf("no model file: %w", err)
		if errors.Is(err, fs.ErrNotExist) {
			dv.err = fmt.Errorf("no model file %s in %s", file, v.Dir)
		}
	} else if !inside(root, v.Path) {
		dv.err = fmt.Errorf("%s leads out of the repository", v.Path)
	}
	v.Fingerprint = fingerprint(d.loadHash, v.Dir)
	dv.v = v
	return dv
}

// readConfig reads and parses the model's config.pbtxt or config.json; no
// file is the default Config. Both is an error: which one means what
// would be a guess.
// noConfigFile is the file of the configuration a model without one gets.
const noConfigFile = "no config file"

func readConfig(dir, model string) (*Config, error) {
	var found []string
	for _, name := range []string{TritonConfigFile, ConfigFile} {
		_, err := resolveWithin(dir, name)
		switch {
		case err == nil:
			found = append(found, name)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fileErr(name, "%v", err)
		}
	}
	switch len(found) {
	case 0:
		return &Config{Model: &modelconfigpb.ModelConfig{Name: model}, file: noConfigFile}, nil
	case 2:
		return nil, fileErr(ConfigFile, "beside %s: keep one (config.json takes the same fields in JSON form, plus servekit's traffic)", TritonConfigFile)
	}
	file := found[0]
	path, _ := resolveWithin(dir, file)
	b, err := readLimited(path, maxConfigBytes)
	if err != nil {
		return nil, fileErr(file, "%v", err)
	}
	parse := ParseConfig
	if file == TritonConfigFile {
		parse = ParseConfigText
	}
	c, err := parse(b)
	if err != nil {
		return nil, err
	}
	if n := c.Model.Name; n != "" && n != model {
		return nil, fileErr(file, "name %q: the model's directory is %q, and the two must agree (as in Triton)", n, model)
	}
	c.Model.Name = model // as Triton fills it in: the configuration it serves names the model
	return c, nil
}

// loadHash covers what a loaded version depends on: the whole
// configuration but the version policy and traffic mode, plus the model
// file name. Changing it reloads every version.
func loadHash(c *Config, file string) []byte {
	m := proto.Clone(c.model()).(*modelconfigpb.ModelConfig)
	m.VersionPolicy = nil
	pb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	b, _ := json.Marshal(struct {
		M []byte          `json:"m"`
		P json.RawMessage `json:"p,omitempty"`
		W []WarmupSample  `json:"w"`
		F string          `json:"f"`
	}{pb, c.Parameters, c.Warmup, file})
	h := sha256.Sum256(b)
	return h[:]
}

// fingerprint hashes the load-relevant config and the name, size and
// modification time of every file under the version directory (model.onnx
// and any external data beside it). Size and time, not content: polling a
// multi-gigabyte model must stay cheap. Replace files by rename (write
// elsewhere, then mv) so a poll never sees half a file; a half-written file
// that fails to load is retried when its fingerprint changes again.
func fingerprint(cfg []byte, dir string) string {
	h := sha256.New()
	h.Write(cfg)
	n := 0
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		switch {
		case n >= maxVersionFiles:
			return filepath.SkipAll
		case err != nil:
			return nil // unreadable: it cannot be loaded either
		}
		if path != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		st, err := os.Stat(path) // follows links: a swapped link target counts
		if err != nil || st.IsDir() {
			return nil
		}
		n++
		rel, _ := filepath.Rel(dir, path)
		var buf [16]byte
		binary.LittleEndian.PutUint64(buf[:8], uint64(st.Size()))
		binary.LittleEndian.PutUint64(buf[8:], uint64(st.ModTime().UnixNano()))
		h.Write([]byte(rel))
		h.Write([]byte{0})
		h.Write(buf[:])
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
