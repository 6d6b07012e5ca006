package rdb

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"
)

//go:embed lua/forward.lua
var forwardLua string

// forwardScript moves the due jobs of one queue from its scheduled and retry
// sets to its pending list or their group: asynq v0.26.0's forwardCmd. Its KEYS
// and ARGV are listed in lua/forward.lua.
var forwardScript = newScript(forwardLua)

// ForwardDue moves the jobs of the queues that are due at now to their
// pending lists, in one round trip: one script per queue, each looking at most
// limit jobs ahead per set. It returns how many it moved in all (when that
// reaches limit, more may be due already) and the earliest due instant still
// waiting (zero if none).
func (r *RDB) ForwardDue(ctx context.Context, queues []string, now time.Time, limit int) (moved int, next time.Time, err error) {
	score := strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)
	calls := make([]*evalCall, len(queues))
	for i, q := range queues {
		calls[i] = &evalCall{script: forwardScript,
			keys: []string{ScheduledKey(q), RetryKey(q), PendingKey(q), TaskKeyPrefix(q), GroupKeyPrefix(q)},
			args: []any{score, limit, now.UnixNano(), q}}
	}
	r.runPipelined(ctx, calls, nil)
	for i, c := range calls {
		res, cerr := c.cmd.Slice()
		if cerr == nil && len(res) != 2 {
			cerr = fmt.Errorf("forward script answered %v", res)
		}
		if cerr != nil {
			if err == nil {
				err = fmt.Errorf("forward due jobs of %s: %w", queues[i], cerr)
			}
			continue
		}
		n, _ := res[0].(int64)
		moved += int(n)
		if s, _ := res[1].(string); s != "" {
			if at, ok := parseScore(s); ok && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return moved, next, err
}
