// Command genmodels writes the ONNX models committed under the repository's
// testdata/models folder:
//
//	go run ./internal/onnxbuild/cmd/genmodels
//
// Today that is fraud.onnx, the demo model of onnxbuild.FraudMLP. The
// output is deterministic, so rerunning it leaves git clean; a test in
// onnxbuild fails when the committed file and the generator disagree.
//
// The folder defaults to testdata/models under the module root found from
// the working directory; -dir overrides it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/servekit/servekit/internal/onnxbuild"
)

func main() {
	dir := flag.String("dir", "", "output folder (default: <module root>/testdata/models)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("genmodels: ")
	if *dir == "" {
		root, err := moduleRoot()
		if err != nil {
			log.Fatal(err)
		}
		*dir = filepath.Join(root, "testdata", "models")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	models := []struct {
		file  string
		build func() ([]byte, error)
	}{
		{"fraud.onnx", onnxbuild.FraudMLP},
	}
	for _, m := range models {
		b, err := m.build()
		if err != nil {
			log.Fatalf("%s: %v", m.file, err)
		}
		path := filepath.Join(*dir, m.file)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("wrote %s (%d bytes)\n", path, len(b))
	}
}

// moduleRoot walks up from the working directory to the folder holding
// go.mod, so the command works from anywhere in the repository.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; pass -dir")
		}
		dir = parent
	}
}
