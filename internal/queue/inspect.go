package queue

import (
	"context"
	"sort"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Inspector answers `errand queues`: rdb's Inspector, with what this
// program's registry adds — the configured queues and their weights. (The
// failed list is internal/failed's.)
type Inspector struct {
	reg *job.Registry
	ins *rdb.Inspector
}

// NewInspector returns an inspector over c.
func NewInspector(reg *job.Registry, c redis.UniversalClient) *Inspector {
	maxAttempts := func(typ string) int {
		if def, err := reg.Lookup(typ); err == nil && !def.Unbounded {
			return def.MaxAttempts
		}
		return 0 // unbounded, or a type this program does not know
	}
	return &Inspector{reg: reg, ins: rdb.NewInspector(c, maxAttempts)}
}

// QueueStats is one row of `errand queues`.
type QueueStats struct {
	Queue          string  `json:"queue"`
	Weight         int     `json:"weight"`
	Pending        int     `json:"pending"`
	Scheduled      int     `json:"scheduled"`
	Retry          int     `json:"retry"`
	Active         int     `json:"active"`
	Failed         int     `json:"failed"`
	Aggregating    int     `json:"aggregating"`
	SucceededToday int     `json:"succeeded_today"`       // jobs completed today; asynq's processed counts failures too
	FailedToday    int     `json:"failed_attempts_today"` // attempts that failed today, retried or final
	LatencySeconds float64 `json:"latency_seconds"`
	Paused         bool    `json:"paused"`
}

// Queues returns the stats of every configured queue and any other queue
// found in Redis.
func (i *Inspector) Queues(ctx context.Context) ([]QueueStats, error) {
	existing, err := i.ins.Queues(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for q := range i.reg.Queues() {
		names[q] = false
	}
	for _, q := range existing {
		names[q] = true
	}
	var out []QueueStats
	for q, exists := range names {
		s := QueueStats{Queue: q, Weight: i.reg.Queues()[q]}
		if exists {
			st, err := i.ins.Stats(ctx, q)
			if err != nil {
				return nil, err
			}
			s.Pending, s.Scheduled, s.Retry, s.Active = st.Pending, st.Scheduled, st.Retry, st.Active
			s.Failed, s.Aggregating = st.Failed, st.Aggregating
			s.SucceededToday, s.FailedToday = st.ProcessedToday-st.FailedToday, st.FailedToday
			s.LatencySeconds = st.Latency.Seconds()
			s.Paused = st.Paused
		}
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Weight != out[b].Weight {
			return out[a].Weight > out[b].Weight
		}
		return out[a].Queue < out[b].Queue
	})
	return out, nil
}

// Alive reports whether the job id is still to run on queue: pending,
// scheduled, waiting to retry, running, or waiting in a group. A job that
// completed, failed for good or is unknown is not alive.
func (i *Inspector) Alive(queue, id string) (bool, error) {
	return i.ins.Alive(context.Background(), queue, id)
}
