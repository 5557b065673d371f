package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// EnvLibraryPath is the environment variable that names the ONNX Runtime
// shared library when no WithLibraryPath option is given.
const EnvLibraryPath = "ONNXRUNTIME_LIB"

// RequiredVersion is the ONNX Runtime release the Go binding
// (onnxruntime_go v1.36.0) was built against: API version 29. Older
// libraries are refused when the environment is created.
const RequiredVersion = "1.29"

// installHint ends every error about a missing or unusable library.
var installHint = "run scripts/install-onnxruntime.sh (it installs ONNX Runtime " + RequiredVersion +
	" into third_party/onnxruntime/) or set " + EnvLibraryPath + "=/path/to/" + libName

// ErrRuntimeMissing is wrapped by the error InitRuntime, Load and LoadBytes
// return when no ONNX Runtime shared library could be loaded. Tests use it
// to tell "not installed here" from a real failure.
var ErrRuntimeMissing = errors.New("onnx: ONNX Runtime library not found")

// The environment is process-global state of ONNX Runtime (thread pools,
// logging, the default allocator). It is created once, by the first Load,
// and never destroyed: sessions of any number of models share it, and a
// refcount would tear it down and dlclose the library between a test's
// models, only to load it again. A process that must unload ONNX Runtime
// is better served by exiting.
var env struct {
	mu      sync.Mutex
	path    string // guarded by mu: the library that was loaded, "" before
	version string // guarded by mu
}

// InitRuntime loads ONNX Runtime and creates its process-wide environment,
// if that has not happened yet, and returns the library's version. Load and
// LoadBytes call it; call it yourself to fail fast at start-up.
//
// libraryPath may be empty. The library is looked for, in order: at
// libraryPath; at $ONNXRUNTIME_LIB; in third_party/onnxruntime/ of this
// project, found by walking up from the working directory (where
// scripts/install-onnxruntime.sh puts it); and finally wherever the dynamic
// loader finds libonnxruntime.so.1 (LD_LIBRARY_PATH, the system folders).
//
// Once a library is loaded it stays: a later call naming another file fails
// rather than silently using the first one. A failed attempt leaves nothing
// behind, so a later call may try another path.
func InitRuntime(libraryPath string) (version string, err error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if ort.IsInitialized() {
		if env.path == "" { // someone else in this process initialised it
			env.path, env.version = "(loaded outside servekit)", ort.GetVersion()
		}
		if libraryPath != "" && !sameFile(libraryPath, env.path) {
			return "", serving.Errorf(serving.Unavailable,
				"onnx: ONNX Runtime is already loaded from %s in this process; cannot switch to %s", env.path, libraryPath)
		}
		return env.version, nil
	}
	path, how, err := findLibrary(libraryPath)
	if err != nil {
		return "", err
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", initError(path, how, err)
	}
	env.path, env.version = path, ort.GetVersion()
	return env.version, nil
}

// findLibrary applies the search order of InitRuntime. how says where the
// path came from, for error messages.
func findLibrary(option string) (path, how string, err error) {
	if option != "" {
		return checkFile(option, "WithLibraryPath")
	}
	if p := os.Getenv(EnvLibraryPath); p != "" {
		return checkFile(p, EnvLibraryPath)
	}
	if p := projectLibrary(); p != "" {
		return p, "the project's third_party/onnxruntime", nil
	}
	// Let dlopen search LD_LIBRARY_PATH, the ld.so cache and system folders.
	return libName, "the dynamic loader's search path", nil
}

// checkFile fails early, with the fix in the message, for a path a user
// named explicitly: falling back to another library would hide the typo.
func checkFile(p, how string) (string, string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", "", serving.Errorf(serving.Unavailable, "%w: %s=%s: %v; %s", ErrRuntimeMissing, how, p, unwrapPathError(err), installHint)
	}
	if st.IsDir() {
		return "", "", serving.Errorf(serving.Unavailable, "%w: %s=%s is a directory, not the library file %s; %s", ErrRuntimeMissing, how, p, libName, installHint)
	}
	return p, how, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// libName is the library's file name as the install script writes it and as
// the dynamic loader looks for it.
var libName = func() string {
	if runtime.GOOS == "darwin" {
		return "libonnxruntime.dylib"
	}
	return "libonnxruntime.so.1"
}()

// projectLibrary walks up from the working directory looking for
// third_party/onnxruntime/<libName>, so that `go test ./...` in any package
// of a checkout finds the library the install script put there.
func projectLibrary() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "third_party", "onnxruntime", libName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// initError turns the binding's messages into ones that say what to do.
func initError(path, how string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Error loading ONNX shared library"):
		return serving.Errorf(serving.Unavailable, "%w (looked in %s: %s): %v; %s", ErrRuntimeMissing, how, path, err, installHint)
	case strings.Contains(msg, "OrtGetApiBase"):
		return serving.Errorf(serving.Unavailable,
			"onnx: %s (from %s) is not an ONNX Runtime library (it has no OrtGetApiBase); %s", path, how, installHint)
	case strings.Contains(msg, "Error setting ORT API base"):
		// The library does not offer API version 29: it predates 1.29.
		return serving.Errorf(serving.Unavailable,
			"onnx: the ONNX Runtime library at %s (from %s) is older than %s, which this build needs (API 29): %v; %s",
			path, how, RequiredVersion, err, installHint)
	}
	return serving.Errorf(serving.Unavailable, "onnx: creating the ONNX Runtime environment from %s (from %s): %w", path, how, err)
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(sa, sb)
}
