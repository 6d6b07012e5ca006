package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Due counts the jobs of queues a worker could run at now, in one round trip: pending (on a queue not
// paused), leased by a lost worker (its lease ended: put back within seconds), scheduled or retrying and
// due. Jobs due later, a group's still gathering and those of living workers are not counted.
func (r *RDB) Due(ctx context.Context, queues []string, now time.Time) (n int64, err error) {
	at, lease := strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64), "("+strconv.FormatInt(now.Unix(), 10)
	cmds := make([][]*redis.IntCmd, len(queues))
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			cmds[i] = []*redis.IntCmd{p.Exists(ctx, PausedKey(q)), p.LLen(ctx, PendingKey(q)), p.ZCount(ctx, LeaseKey(q), "-inf", lease),
				p.ZCount(ctx, ScheduledKey(q), "-inf", at), p.ZCount(ctx, RetryKey(q), "-inf", at)}
		}
		return nil
	})
	for _, c := range cmds {
		n += c[1].Val()*(1-c[0].Val()) + c[2].Val() + c[3].Val() + c[4].Val() // EXISTS paused is 0 or 1
	}
	if err != nil {
		return 0, fmt.Errorf("count due jobs: %w", err)
	}
	return n, nil
}
