package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "servekit:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `servekit serves ONNX models over the Open Inference Protocol (KServe V2 / Triton).

Usage:
  servekit serve --model-repository DIR [flags]   serve a model repository over REST, gRPC and /metrics
  servekit infer --model-name NAME [flags]         send one inference request, print the answer
  servekit version                                 print the module, Go and ONNX Runtime versions

Every flag may also come from $SERVEKIT_<FLAG>, the flag's name in upper
case with dashes as underscores (--http-port: $SERVEKIT_HTTP_PORT); the
command line wins. "servekit COMMAND --help" lists a command's flags.
`

// run is main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command: want serve, infer or version")}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stdout)
	case "infer":
		return infer(ctx, rest, stdin, stdout, stderr)
	case "version", "--version", "-version":
		return version(rest, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q: want serve, infer or version", cmd)}
	}
}

// exitCode is 2 for a command line that cannot mean anything (as the flag
// package and Triton do), 1 for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
