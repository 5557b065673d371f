package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving/oip"
)

// Model control, with Triton's flag names and meanings:
//
//	-model-control-mode none      load every model of -repo at start; never re-read it
//	-model-control-mode poll      (default) and re-read -repo every -repo-poll
//	-model-control-mode explicit  load only the -load-model models (all with
//	                              -load-model '*'); clients load and unload
//	                              models through the repository extension
//	                              (REST /v2/repository/..., gRPC Repository*),
//	                              behind -admin-token; the watcher keeps the
//	                              loaded models' versions in step
//
// Repository control changes what every client is answered with, so it is
// an admin capability: only explicit mode turns it on, and only with the
// admin token (the one pprof takes), never for anyone who can reach the
// port.
const (
	controlNone     = "none"
	controlPoll     = "poll"
	controlExplicit = "explicit"
)

type modelNames []string

func (l *modelNames) String() string { return strings.Join(*l, ",") }
func (l *modelNames) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func addControlFlags(fs *flag.FlagSet, o *repoOptions) {
	fs.StringVar(&o.controlMode, "model-control-mode", env("SERVEKIT_MODEL_CONTROL_MODE", controlPoll),
		"Triton's model control mode for -repo: none (load all, never re-read), poll (load all, re-read every -repo-poll), explicit (load -load-model only; clients load and unload through the repository extension, behind -admin-token) ($SERVEKIT_MODEL_CONTROL_MODE)")
	fs.Var(&o.loadModels, "load-model", "with -model-control-mode explicit, a model to load at start, repeatable; '*' loads every model")
}

// protocolServer builds the protocol core both transports serve: repository
// control on in explicit mode, behind the admin token. It returns the
// token to print ("" when control is off).
func protocolServer(o *options, log *slog.Logger) (*oip.Server, string) {
	opts := []oip.Option{oip.WithLogger(log)}
	shown := ""
	if o.repo != "" && o.controlMode == controlExplicit {
		token, s := adminToken(o.adminToken)
		shown = s
		opts = append(opts, oip.WithRepositoryControl(admin.BearerToken(token)))
	}
	return oip.NewServer(opts...), shown
}

// controlOptions are the repository options of the model control mode.
func controlOptions(o *options) []repository.Option {
	switch o.controlMode {
	case controlNone:
		return []repository.Option{repository.WithPollInterval(0)}
	case controlExplicit:
		if len(o.loadModels) == 1 && o.loadModels[0] == "*" {
			return nil // every model, as in poll mode, but clients may load and unload
		}
		return []repository.Option{repository.WithExplicit(o.loadModels...)}
	}
	return nil
}

// checkControl refuses a mode Triton does not have, and -load-model
// outside explicit mode, where it would mean nothing.
func checkControl(o *options) error {
	switch o.controlMode {
	case controlNone, controlPoll, controlExplicit:
	default:
		return fmt.Errorf("-model-control-mode %q: want none, poll or explicit", o.controlMode)
	}
	if len(o.loadModels) > 0 && o.controlMode != controlExplicit {
		return fmt.Errorf("-load-model needs -model-control-mode explicit (as in Triton)")
	}
	return nil
}
