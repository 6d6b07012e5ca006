package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// infoField reads one numeric field of an INFO section.
func infoField(ctx context.Context, rdb *redis.Client, section, field string) (int64, error) {
	s, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && k == field {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s has no %s", section, field)
}

// totalCalls sums calls= over every cmdstat_ line of INFO commandstats.
func totalCalls(ctx context.Context, rdb *redis.Client) (int64, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "cmdstat_") {
			continue
		}
		_, stats, _ := strings.Cut(l, ":")
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("commandstats: %q: %w", l, err)
				}
				total += n
			}
		}
	}
	return total, nil
}

// infoSelfCost is how many calls one INFO commandstats reading adds to the
// next reading (Redis counts a command after it ran, so 1 on the Redis
// versions seen, but measured rather than assumed).
func infoSelfCost(ctx context.Context, rdb *redis.Client) (int64, error) {
	a, err := totalCalls(ctx, rdb)
	if err != nil {
		return 0, err
	}
	b, err := totalCalls(ctx, rdb)
	if err != nil {
		return 0, err
	}
	return b - a, nil
}

// idleCommandsPerSecond counts the commands Redis ran over quiet, minus the
// reading's own.
func idleCommandsPerSecond(ctx context.Context, rdb *redis.Client, quiet time.Duration) (float64, error) {
	self, err := infoSelfCost(ctx, rdb)
	if err != nil {
		return 0, err
	}
	before, err := totalCalls(ctx, rdb)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(quiet)
	after, err := totalCalls(ctx, rdb)
	if err != nil {
		return 0, err
	}
	return float64(after-before-self) / time.Since(t0).Seconds(), nil
}

// flushAll waits (up to 10 s) until the control client rdb (one connection)
// is the only client connected, then empties Redis, so a scenario starts from
// nothing and measures only its own clients. It returns how many other
// clients were still connected.
func flushAll(ctx context.Context, rdb *redis.Client) (int64, error) {
	deadline := time.Now().Add(10 * time.Second)
	var others int64
	for {
		n, err := infoField(ctx, rdb, "clients", "connected_clients")
		if err != nil {
			return 0, err
		}
		others = n - 1
		if others <= 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return others, rdb.FlushAll(ctx).Err()
}
