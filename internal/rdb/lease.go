package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ExtendLeases moves the lease end of running jobs (ids by queue) to until,
// in one round trip: asynq v0.26.0's ExtendLease, which is a plain ZADD XX
// (only jobs still leased: one whose lease was lost stays lost).
func (r *RDB) ExtendLeases(ctx context.Context, byQueue map[string][]string, until time.Time) error {
	score := float64(until.Unix())
	cmds := make(map[string]*redis.IntCmd, len(byQueue))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for q, ids := range byQueue {
			zs := make([]redis.Z, len(ids))
			for i, id := range ids {
				zs[i] = redis.Z{Score: score, Member: id}
			}
			cmds[q] = p.ZAddXX(ctx, LeaseKey(q), zs...)
		}
		return nil
	})
	for q, c := range cmds {
		if err := c.Err(); err != nil {
			return fmt.Errorf("extend leases on %s: %w", q, err)
		}
	}
	return nil
}
