package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LimitHolds is when each of services' holds ends (LimitHeldUntil for many,
// in one round trip); a service never held, or whose hold record is gone,
// is absent. The caller compares the ends with the time.
func (r *RDB) LimitHolds(ctx context.Context, services []string) (map[string]time.Time, error) {
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
