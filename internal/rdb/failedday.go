package rdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailedOnDays counts, for each of days (by its UTC date), the jobs of queue
// q that failed for good that day and are still on the failed list (scored
// by the second they failed), in one round trip: the dashboard counts jobs
// where asynq's day counters count failed attempts.
func (i *Inspector) FailedOnDays(ctx context.Context, q string, days []time.Time) ([]int, error) {
	pipe, cmds := i.rdb.c.Pipeline(), make([]*redis.IntCmd, len(days))
	for n, d := range days {
		from := d.UTC().Truncate(24 * time.Hour).Unix() // the day's midnight, UTC
		cmds[n] = pipe.ZCount(ctx, ArchivedKey(q), fmt.Sprint(from), fmt.Sprint("(", from+24*60*60))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("failed jobs per day on %s: %w", q, err)
	}
	out := make([]int, len(days))
	for n, c := range cmds {
		out[n] = int(c.Val())
	}
	return out, nil
}
