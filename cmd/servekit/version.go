package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/servekit/servekit/backend/onnx"
)

const versionUsage = "servekit version [--ort-lib PATH]"

// version prints what a bug report needs: the module's version (a tag
// for go install …@vX.Y.Z, "(devel)" for a build from a checkout, with
// its VCS revision when the build recorded one), the Go version it was
// built with and the platform, and the ONNX Runtime library this
// process would load, with its version. A missing ONNX Runtime is
// printed, not an error: the command still says what it is.
func version(args []string, stdout io.Writer) error {
	var ortLib string
	f := newFlags("version", versionUsage, stdout)
	f.str(&ortLib, "ort-lib", "", "the ONNX Runtime shared library to report on (else $ONNXRUNTIME_LIB, third_party/onnxruntime/, the system's)")
	if err := f.parse(args); err != nil {
		return usageError{err}
	}
	mod, rev := "unknown (built without module information)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod = bi.Main.Path + " " + bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					rev += " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(stdout, "servekit %s\n", mod)
	if rev != "" {
		fmt.Fprintf(stdout, "revision %s\n", rev)
	}
	fmt.Fprintf(stdout, "go %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if v, err := onnx.InitRuntime(ortLib); err != nil {
		fmt.Fprintf(stdout, "onnxruntime not loaded: %v\n", err)
	} else {
		fmt.Fprintf(stdout, "onnxruntime %s\n", v)
	}
	return nil
}
