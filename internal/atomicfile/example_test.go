package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/servekit/servekit/internal/atomicfile"
)

// A file is invisible under its name until Commit.
func Example() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "part-0.jsonl")
	f, _ := atomicfile.Create(path)
	fmt.Fprintln(f, `{"y":1}`)
	_, err := os.Stat(path)
	fmt.Println("visible before Commit:", err == nil)
	f.Commit()
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output:
	// visible before Commit: false
	// {"y":1}
}
