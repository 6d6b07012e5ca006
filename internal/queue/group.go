package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Groups queues jobs into asynq groups: asynq holds a group's jobs until none
// arrived for a while, then hands them to the worker's Aggregator, which
// makes them one job. The escalation digest is made this way.
type Groups struct {
	reg *job.Registry
	ac  *asynq.Client
}

// NewGroups returns a group client over rdb for the job types of reg.
func NewGroups(reg *job.Registry, rdb redis.UniversalClient) *Groups {
	return &Groups{reg: reg, ac: asynq.NewClientFromRedisClient(rdb)}
}

// Enqueue queues the prepared envelope e into group.
func (g *Groups) Enqueue(ctx context.Context, e job.Envelope, group string) error {
	def, err := g.reg.Lookup(e.Type)
	if err != nil {
		return err
	}
	headers := map[string]string{headerQueued: strconv.FormatInt(e.QueuedAt.UnixMilli(), 10)}
	_, err = g.ac.EnqueueContext(ctx, asynq.NewTaskWithHeaders(e.Type, e.Payload, headers),
		asynq.Queue(e.Queue), asynq.Group(group), asynq.MaxRetry(maxRetrySentry),
		asynq.Timeout(def.Timeout+timeoutGrace))
	if err != nil {
		return fmt.Errorf("queue: enqueue %s into group %s: %w", e.Type, group, err)
	}
	return nil
}

// Aggregator merges the payloads of one group's jobs into the payload of the
// one job that replaces them, of the same type.
type Aggregator func(group string, payloads [][]byte) []byte

// engine returns a as asynq's group aggregator, or nil for a nil a.
func (a Aggregator) engine() asynq.GroupAggregator {
	if a == nil {
		return nil
	}
	return asynq.GroupAggregatorFunc(func(group string, tasks []*asynq.Task) *asynq.Task {
		typ := ""
		payloads := make([][]byte, len(tasks))
		for i, t := range tasks {
			typ = t.Type()
			payloads[i] = t.Payload()
		}
		headers := map[string]string{headerQueued: strconv.FormatInt(time.Now().UnixMilli(), 10)}
		return asynq.NewTaskWithHeaders(typ, a(group, payloads), headers)
	})
}
