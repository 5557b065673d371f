//go:build !servekit_noredis

package main

import (
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/cache"
)

// redisL2 is the cache's option for the Redis second tier that r asks for
// (none without an address) and the client's close.
func redisL2(r redisOptions) ([]cache.Option, func() error, error) {
	if r.addr == "" {
		return nil, func() error { return nil }, nil
	}
	l2 := []cache.L2Option{cache.WithL2Timeout(r.timeout)}
	switch {
	case r.unauthenticated && r.hmacKey != "":
		return nil, nil, errors.New("--cache-redis-unauthenticated contradicts --cache-redis-hmac-key")
	case r.hmacKey != "":
		var previous [][]byte
		if r.hmacPrevious != "" {
			previous = append(previous, []byte(r.hmacPrevious))
		}
		l2 = append(l2, cache.WithL2Key([]byte(r.hmacKey), previous...))
	case r.unauthenticated:
		l2 = append(l2, cache.WithL2Unauthenticated())
	default:
		return nil, nil, errors.New("--cache-redis needs --cache-redis-hmac-key ($SERVEKIT_CACHE_REDIS_HMAC_KEY), the secret that authenticates what replicas write to it, or --cache-redis-unauthenticated to run without one")
	}
	// ContextTimeoutEnabled: the cache bounds every Redis call by its own
	// timeout, so a dead Redis costs a miss, never a stall.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, Password: r.password, ContextTimeoutEnabled: true})
	return []cache.Option{cache.WithRedis(rdb, l2...)}, rdb.Close, nil
}
