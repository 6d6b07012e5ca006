package rdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailedOnDays counts, for each of days (by its UTC date), the jobs of queue
// q that failed for good that day and are still on the failed list, in one
// round trip: the dashboard's failure rate counts jobs, where asynq's day
// counters count failed attempts.
func (i *Inspector) FailedOnDays(ctx context.Context, q string, days []time.Time) ([]int, error) {
	out := make([]int, len(days))
	if len(days) == 0 {
		return out, nil
	}
	pipe := i.rdb.c.Pipeline()
	cmds := make([]*redis.IntCmd, len(days))
	for n, d := range days {
		y, m, dd := d.UTC().Date()
		from := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).Unix()
		// The failed list is scored by the Unix second of the failure.
		cmds[n] = pipe.ZCount(ctx, ArchivedKey(q), strconv.FormatInt(from, 10), "("+strconv.FormatInt(from+24*60*60, 10))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("failed jobs per day on %s: %w", q, err)
	}
	for n, c := range cmds {
		out[n] = int(c.Val())
	}
	return out, nil
}
