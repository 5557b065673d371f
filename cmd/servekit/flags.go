package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// envName is the variable a flag may come from.
func envName(flagName string) string {
	return "SERVEKIT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// cmdFlags is a flag set that remembers the order and the sections flags
// were registered in, for a --help a person can read (flag.PrintDefaults
// sorts fifty flags alphabetically).
type cmdFlags struct {
	*flag.FlagSet
	usage string    // the synopsis, first line of --help
	order []string  // flag names, and "\x00Section" headings, as registered
	out   io.Writer // where --help and parse errors go
}

func newFlags(name, usage string, out io.Writer) *cmdFlags {
	f := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage, out: out}
	// The flag package prints a mistake and then the whole --help; the
	// mistake alone, returned, says more (main prints it once).
	f.SetOutput(io.Discard)
	f.Usage = func() {}
	return f
}

func (f *cmdFlags) section(title string) { f.order = append(f.order, "\x00"+title) }

func (f *cmdFlags) str(p *string, name, def, usage string) {
	f.StringVar(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) boolean(p *bool, name string, def bool, usage string) {
	f.BoolVar(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) integer(p *int, name string, def int, usage string) {
	f.IntVar(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) int64(p *int64, name string, def int64, usage string) {
	f.Int64Var(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) float(p *float64, name string, def float64, usage string) {
	f.Float64Var(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage)
	f.order = append(f.order, name)
}

func (f *cmdFlags) value(v flag.Value, name, usage string) {
	f.Var(v, name, usage)
	f.order = append(f.order, name)
}

// parse reads the command line, then the environment for every flag the
// command line left unset. Arguments that are not flags are refused: no
// subcommand here takes any, and a path given without its flag (servekit
// serve models/) should say so rather than be ignored.
func (f *cmdFlags) parse(args []string) error {
	if err := f.Parse(args); errors.Is(err, flag.ErrHelp) {
		f.printUsage()
		return err
	} else if err != nil {
		return fmt.Errorf("%s: %w (see servekit %s --help)", f.Name(), err, f.Name())
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (every setting is a --flag; see --help)", f.Name(), f.Arg(0))
	}
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var errs []error
	f.VisitAll(func(fl *flag.Flag) {
		if given[fl.Name] {
			return
		}
		v := os.Getenv(envName(fl.Name))
		if v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("$%s=%q: %w", envName(fl.Name), v, err))
		}
	})
	return errors.Join(errs...)
}

// renamed are examples/realtime's variables whose names changed when its
// flags moved here; one still set would be silently ignored (a model
// missing, a cache tier off), so the command refuses to start and names
// the new one.
var renamed = map[string]string{
	"SERVEKIT_ADDR":                    "SERVEKIT_HTTP_ADDRESS and SERVEKIT_HTTP_PORT",
	"SERVEKIT_MODELS":                  "SERVEKIT_MODEL",
	"SERVEKIT_REPO":                    "SERVEKIT_MODEL_REPOSITORY",
	"SERVEKIT_METRICS_ADDR":            "SERVEKIT_METRICS_ADDRESS and SERVEKIT_METRICS_PORT",
	"SERVEKIT_GRPC_ADDR":               "SERVEKIT_GRPC_ADDRESS and SERVEKIT_GRPC_PORT",
	"SERVEKIT_REDIS":                   "SERVEKIT_CACHE_REDIS",
	"SERVEKIT_REDIS_PASSWORD":          "SERVEKIT_CACHE_REDIS_PASSWORD",
	"SERVEKIT_REDIS_HMAC_KEY":          "SERVEKIT_CACHE_REDIS_HMAC_KEY",
	"SERVEKIT_REDIS_HMAC_KEY_PREVIOUS": "SERVEKIT_CACHE_REDIS_HMAC_KEY_PREVIOUS",
	"SERVEKIT_CUDA_DEVICE":             "SERVEKIT_CUDA",
}

func renamedEnv() error {
	var errs []error
	for old, now := range renamed {
		if os.Getenv(old) != "" {
			errs = append(errs, fmt.Errorf("$%s is examples/realtime's old name: set $%s instead", old, now))
		}
	}
	return errors.Join(errs...)
}

func (f *cmdFlags) printUsage() {
	w := f.out
	fmt.Fprintf(w, "Usage: %s\n", f.usage)
	fmt.Fprintf(w, "\nEvery flag may also come from $SERVEKIT_<NAME> (shown after each); the command line wins.\n")
	for _, name := range f.order {
		if title, ok := strings.CutPrefix(name, "\x00"); ok {
			fmt.Fprintf(w, "\n%s:\n", title)
			continue
		}
		fl := f.Lookup(name)
		typ, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if def := fl.DefValue; def != "" && def != "0" && def != "false" && def != "[]" {
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintf(w, " [$%s]\n", envName(fl.Name))
	}
}

// listFlag is a repeatable flag; each value may also be a comma-separated
// list (as the environment gives it).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
