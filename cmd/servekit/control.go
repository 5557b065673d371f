package main

import (
	"log/slog"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving/oip"
)

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
