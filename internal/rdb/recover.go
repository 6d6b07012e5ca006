package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// LeaseLost is the error recorded on a job whose worker was lost mid-job
// (asynq's ErrLeaseExpired text, so asynq's tools show the same).
const LeaseLost = "asynq: task lease expired"

// RecoverExpired puts back the jobs of queue q whose lease ended before now
// (their worker was lost: a living one extends its leases well before they
// end), up to limit of them, each as a used attempt run again at once with
// the same id: asynq v0.26.0's recoverer (ListLeaseExpired, then Retry),
// without its 30 s grace. The attempt counts, so a job that keeps killing its
// worker ends when its attempts are used: the worker that fetches it next
// refuses it and fails it for good, with its escalation. It returns how many
// jobs it put back.
func (r *RDB) RecoverExpired(ctx context.Context, q string, now time.Time, limit int) (int, error) {
	ids, err := r.c.ZRangeByScore(ctx, LeaseKey(q), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.Unix()-1, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("list expired leases on %s: %w", q, err)
	}
	n := 0
	for _, id := range ids {
		raw, err := r.c.HGet(ctx, TaskKey(q, id), "msg").Bytes()
		if errors.Is(err, redis.Nil) {
			continue // gone meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("read lost job %s on %s: %w", id, q, err)
		}
		msg, err := decodeMessage(raw)
		if err != nil {
			continue // not a message errand can rewrite: asynq's recoverer archives it
		}
		j := &Fetched{Queue: q, ID: id, Msg: msg, raw: raw}
		if err := r.Retry(ctx, j, LeaseLost, true, time.Time{}); err != nil {
			return n, fmt.Errorf("recover: %w", err)
		}
		n++
	}
	return n, nil
}
