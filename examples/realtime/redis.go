//go:build !servekit_noredis

package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/cache"
)

// redisL2 is the cache's option for a Redis second tier at addr ("" for
// none) and the client's close.
func redisL2(addr string) ([]cache.Option, func() error, error) {
	if addr == "" {
		return nil, func() error { return nil }, nil
	}
	// ContextTimeoutEnabled: the cache bounds every Redis call by its own
	// timeout, so a dead Redis costs a miss, never a stall.
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	return []cache.Option{cache.WithRedis(rdb)}, rdb.Close, nil
}
