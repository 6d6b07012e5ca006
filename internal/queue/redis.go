package queue

import (
	"github.com/errandhq/errand/internal/config"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// NewRedis returns the client for the [redis] settings: a plain client, a
// failover client that asks the sentinels for the master and follows it
// through a failover, or a cluster client. Every command, the dashboard and
// the scheduler connect through it.
func NewRedis(c config.Redis) redis.UniversalClient {
	return newRedis(c, 0)
}

// newRedis is NewRedis with a pool of poolSize connections per node (0 =
// go-redis's default).
func newRedis(c config.Redis, poolSize int) redis.UniversalClient {
	tlsConf, _ := c.RedisTLS() // checked by config.Validate
	switch c.Mode {
	case config.RedisSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.MasterName, SentinelAddrs: c.Addrs, SentinelPassword: c.SentinelPassword,
			Username: c.Username, Password: c.Password, DB: c.DB,
			TLSConfig: tlsConf, PoolSize: poolSize,
		})
	case config.RedisCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addrs, Username: c.Username, Password: c.Password,
			TLSConfig: tlsConf, PoolSize: poolSize,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
		TLSConfig: tlsConf, PoolSize: poolSize,
	})
}

// ConnOpt returns the asynq connection option for the [redis] settings, for
// what asynq connects itself (the dashboard, the scheduler): it builds its
// client with NewRedis, so it follows the mode.
func ConnOpt(c config.Redis) asynq.RedisConnOpt { return connOpt{c} }

type connOpt struct{ c config.Redis }

// MakeRedisClient implements asynq.RedisConnOpt.
func (o connOpt) MakeRedisClient() any { return NewRedis(o.c) }
