package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/redis/go-redis/v9"
)

// unreachable says in one line why Redis could not be reached, naming the
// setting to check: in sentinel mode it asks the sentinels themselves, since
// go-redis's error lists every sentinel's answer on lines of its own. A
// master name the sentinels do not know is a *redisRefusedError: the
// sentinels answered, and waiting does not help.
func unreachable(ctx context.Context, rc config.Redis, err error) error {
	switch rc.Mode {
	case config.RedisSentinel:
		return sentinelTrouble(ctx, rc, err)
	case config.RedisCluster:
		return fmt.Errorf("cannot reach the Redis Cluster through any of its seeds in redis.addrs (%s): %s",
			strings.Join(rc.Addrs, ", "), flatErr(err))
	}
	return fmt.Errorf("cannot reach Redis at %s (redis.addr): %s", rc.Addr, flatErr(err))
}

func sentinelTrouble(ctx context.Context, rc config.Redis, err error) error {
	// The ping's own deadline may be spent: the sentinels get a fresh one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	type answer struct {
		addr   string
		master []string
		err    error
	}
	answers := make([]answer, len(rc.Addrs))
	var wg sync.WaitGroup
	for i, addr := range rc.Addrs {
		wg.Go(func() {
			tlsConf, _ := rc.RedisTLS()
			s := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: rc.SentinelPassword, TLSConfig: tlsConf,
				DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
			defer s.Close()
			m, err := s.GetMasterAddrByName(ctx, rc.MasterName).Result()
			answers[i] = answer{addr, m, err}
		})
	}
	wg.Wait()
	var down []string
	var master string
	for _, a := range answers {
		switch {
		case errors.Is(a.err, redis.Nil):
		case a.err != nil:
			down = append(down, a.addr+": "+flatErr(a.err))
		case len(a.master) == 2 && master == "":
			master = a.master[0] + ":" + a.master[1]
		}
	}
	switch {
	case len(down) == len(rc.Addrs):
		return fmt.Errorf("cannot reach any sentinel in redis.addrs (%s)", strings.Join(down, "; "))
	case master == "":
		return &redisRefusedError{addr: "the sentinels in redis.addrs (" + strings.Join(rc.Addrs, ", ") + ")",
			why: fmt.Sprintf("they know no master named %q", rc.MasterName), check: "redis.master_name"}
	}
	if check := refusalSettings(err); check != "" {
		return &redisRefusedError{addr: master + ", the master of " + fmt.Sprintf("%q", rc.MasterName), why: flatErr(err), check: check}
	}
	return fmt.Errorf("cannot reach Redis at %s, the master the sentinels name for %q: %s", master, rc.MasterName, flatErr(err))
}

// flatErr keeps an error on one line (errors.Join puts each on its own).
func flatErr(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// warnIfEvicting logs a WARN for every Redis (each master of a cluster)
// whose maxmemory-policy is not noeviction: under memory pressure such a
// Redis deletes keys, and a job queue's keys are jobs.
func (a *app) warnIfEvicting(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	check := func(ctx context.Context, c *redis.Client) {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			a.log.Debug("could not read INFO memory", "error", err.Error())
			return
		}
		policy := infoField(info, "maxmemory_policy")
		if policy != "" && policy != "noeviction" {
			a.log.Warn("Redis may evict jobs under memory pressure: set maxmemory-policy noeviction (a job queue must keep every key)",
				"redis", c.Options().Addr, "maxmemory_policy", policy)
		}
	}
	switch c := a.rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { check(ctx, c); return nil })
	case *redis.Client:
		check(ctx, c)
	}
}

// infoField returns the value of field in an INFO answer, or "".
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
