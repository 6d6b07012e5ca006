package sharedlimit

import (
	"context"
	"errors"
	"fmt"
	"github.com/errandhq/errand/internal/rdb"
	"time"

	"github.com/redis/go-redis/v9"
)

// LimitHolds is when each of services' holds ends (LimitHeldUntil for many,
// in one round trip); a service never held, or whose hold record is gone,
// is absent. The caller compares the ends with the time.
func (r *Store) LimitHolds(ctx context.Context, services []string) (map[string]time.Time, error) {
	cmds := make([]*redis.StringCmd, len(services))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range services {
			cmds[i] = p.HGet(ctx, LimitKey(s), "hold")
		}
		return nil
	})
	out := make(map[string]time.Time, len(services))
	for i, s := range services {
		ms, err := cmds[i].Int64()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("hold of %s: %w", s, err)
		}
		out[s] = time.UnixMilli(ms)
	}
	return out, nil
}

// ThrottledField is the field of rdb.MetricsKey that counts the throttled
// answers of service that held it (each LimitHold): /metrics reads it as
// errand_service_throttled_total.
func ThrottledField(service string) string { return "service_throttled|" + service }

// countHold adds one to service's ThrottledField, in the round trip of the
// hold (a plain HINCRBY: rdb.MetricsKey belongs to no service's slot).
func countHold(ctx context.Context, p redis.Pipeliner, service string) {
	p.HIncrBy(ctx, rdb.MetricsKey, ThrottledField(service), 1)
}
