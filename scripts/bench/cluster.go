package main

// The drain scenario on a Redis Cluster: bench.sh -redis cluster starts three
// masters beside the standalone server and passes their addresses with
// -cluster; each drain round then runs on both, so the two figures come from
// the same box and the same run.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// A Redis target is given as one address (a standalone server) or as the
// comma-separated addresses of a cluster's masters.
func isCluster(target string) bool { return strings.Contains(target, ",") }

func clusterAddrs(target string) []string { return strings.Split(target, ",") }

// asynqConn is asynq's connection option for target: asynq supports a
// cluster through its own cluster client.
func asynqConn(target string) asynq.RedisConnOpt {
	if isCluster(target) {
		return asynq.RedisClusterClientOpt{Addrs: clusterAddrs(target)}
	}
	return asynq.RedisClientOpt{Addr: target}
}

// controls are one single-connection client per server of target (every
// master of a cluster), for FLUSHALL and INFO.
func controls(target string) []*redis.Client {
	var cs []*redis.Client
	for _, a := range clusterAddrs(target) {
		cs = append(cs, redis.NewClient(&redis.Options{Addr: a, PoolSize: 1, MinIdleConns: 0}))
	}
	return cs
}

// freshTarget empties every server of target once only its control client is
// connected (see flushAll).
func freshTarget(ctx context.Context, ctls []*redis.Client) (int64, error) {
	var others int64
	for _, c := range ctls {
		n, err := flushAll(ctx, c)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.Options().Addr, err)
		}
		others += n
	}
	return others, nil
}

// redisCost is the CPU seconds (user + system) and the commands the servers
// of a target have used so far: read before and after a drain, it shows
// where a drain's time went on the Redis side.
func redisCost(ctx context.Context, ctls []*redis.Client) (cpu float64, calls int64, err error) {
	for _, c := range ctls {
		s, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return 0, 0, err
		}
		for _, l := range strings.Split(s, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
			if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("INFO cpu: %q: %w", l, err)
				}
				cpu += f
			}
		}
		n, err := totalCalls(ctx, c)
		if err != nil {
			return 0, 0, err
		}
		calls += n
	}
	return cpu, calls, nil
}
