package redisconn

import (
	"github.com/errandhq/errand/internal/config"
	"github.com/redis/go-redis/v9"
)

// EngineClient returns the client a worker's asynq server runs on: a small
// pool of its own where c's kind can be copied, so its background traffic
// never waits behind the fetcher's; else c itself, shared. In sentinel mode
// it is a failover client of its own: a copy of c's options would dial
// through c's sentinels, but c closes only its own pool's connections to a
// demoted master, and the copy would stop dialing once c is closed.
func EngineClient(rc config.Redis, c redis.UniversalClient) (redis.UniversalClient, func() error) {
	if rc.Mode == config.RedisSentinel {
		e := NewPool(rc, 4)
		return e, e.Close
	}
	switch c := c.(type) {
	case *redis.Client:
		o := *c.Options()
		o.PoolSize = 4
		e := redis.NewClient(&o)
		return e, e.Close
	case *redis.ClusterClient:
		o := *c.Options()
		o.PoolSize = 4
		e := redis.NewClusterClient(&o)
		return e, e.Close
	}
	return c, func() error { return nil }
}
