//go:build servekit_noredis

package main

import (
	"errors"

	"github.com/servekit/servekit/cache"
)

// Built with -tags servekit_noredis: no Redis client in the binary (the
// cache package still links go-redis for its WithRedis option; README "At
// the edge" has the sizes). -cache-redis is refused rather than ignored.
func redisL2(r redisOptions) ([]cache.Option, func() error, error) {
	if r.addr != "" {
		return nil, nil, errors.New("--cache-redis: this binary was built with -tags servekit_noredis, without Redis")
	}
	return nil, func() error { return nil }, nil
}
