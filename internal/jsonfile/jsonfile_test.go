package jsonfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type doc struct {
	N int `json:"n"`
}

func (d *doc) Validate() error {
	if d.N < 0 {
		return errors.New("pkg: negative n")
	}
	return nil
}

func TestDecode(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"n": 1}`, ""},
		{`{"n": 1, "m": 2}`, `pkg: decode doc: json: unknown field "m"`},
		{`{"n": 1} {}`, "pkg: decode doc: data after the doc object"},
		{`{"n": -1}`, "pkg: negative n"},
		{`{"n": `, "pkg: decode doc: unexpected EOF"},
	} {
		d, err := Decode[doc](strings.NewReader(c.in), "pkg", "doc")
		if c.err == "" {
			if err != nil || d.N != 1 {
				t.Errorf("%s: got %v, %v", c.in, d, err)
			}
			continue
		}
		if err == nil || err.Error() != c.err {
			t.Errorf("%s: got error %v, want %q", c.in, err, c.err)
		}
	}
}

func TestReadNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.json")
	if err := os.WriteFile(path, []byte(`{"n": -1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read[doc](path, "pkg", "doc"); err == nil || !strings.HasSuffix(err.Error(), "("+path+")") {
		t.Fatalf("error %v does not name %s", err, path)
	}
	if _, err := Read[doc](path+".missing", "pkg", "doc"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
