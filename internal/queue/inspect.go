package queue

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Inspector answers `errand queues` and `errand failed …`: rdb's Inspector,
// with what this program's registry adds — the configured queues and their
// weights, each type's attempts, and a retry that queues the job anew.
type Inspector struct {
	reg    *job.Registry
	ins    *rdb.Inspector
	client *Client
}

// NewInspector returns an inspector over c.
func NewInspector(reg *job.Registry, c redis.UniversalClient) *Inspector {
	maxAttempts := func(typ string) int {
		if def, err := reg.Lookup(typ); err == nil && !def.Unbounded {
			return def.MaxAttempts
		}
		return 0 // unbounded, or a type this program does not know
	}
	return &Inspector{reg: reg, ins: rdb.NewInspector(c, maxAttempts), client: NewClient(reg, c)}
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

// FailedJob is one job in the failed list.
type FailedJob struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Queue       string    `json:"queue"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	Error       string    `json:"error"`
	FailedAt    time.Time `json:"failed_at"`
	QueuedAt    time.Time `json:"queued_at,omitempty"`
	Payload     string    `json:"payload"`
}

func failedJob(j rdb.Job) FailedJob {
	f := FailedJob{ID: j.ID, Type: j.Type, Queue: j.Queue, Attempts: j.Attempts, MaxAttempts: j.MaxAttempts,
		Error: j.LastError, FailedAt: j.FailedAt, Payload: string(j.Payload)}
	if q, ok := headerMillis(j.Headers, headerQueued); ok {
		f.QueuedAt = q
	}
	return f
}

func (i *Inspector) queueNames(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	return i.ins.Queues(ctx)
}

// Failed lists the failed jobs, oldest failure first, of one queue or all.
func (i *Inspector) Failed(ctx context.Context, queue string) ([]FailedJob, error) {
	qs, err := i.queueNames(ctx, queue)
	if err != nil {
		return nil, err
	}
	var out []FailedJob
	for _, q := range qs {
		jobs, err := i.ins.Failed(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			out = append(out, failedJob(j))
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].FailedAt.Before(out[b].FailedAt) })
	return out, nil
}

// ErrNotFound is returned for an ID that is not in the failed list.
var ErrNotFound = errors.New("no failed job with that id")

func (i *Inspector) findFailed(ctx context.Context, id string) (rdb.Job, error) {
	j, err := i.ins.FindFailed(ctx, id)
	if errors.Is(err, rdb.ErrNotFound) {
		return j, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return j, err
}

// Retry queues a failed job again with its full attempts, as a new job (new
// ID, remembering the old one), then removes it from the failed list. It
// returns the new job's ID.
func (i *Inspector) Retry(ctx context.Context, id string) (string, error) {
	j, err := i.findFailed(ctx, id)
	if err != nil {
		return "", err
	}
	return i.retry(ctx, j)
}

func (i *Inspector) retry(ctx context.Context, j rdb.Job) (string, error) {
	now := time.Now()
	e := job.Envelope{ID: job.NewID(now), Type: j.Type, Queue: j.Queue, Payload: j.Payload, QueuedAt: now, DueAt: now}
	t, err := i.client.task(e, map[string]string{headerRetryOf: j.ID})
	if err != nil {
		return "", fmt.Errorf("retry %s: %w", j.ID, err)
	}
	if err := i.ins.Retry(ctx, j, t); err != nil {
		return "", err
	}
	return e.ID, nil
}

// RetryAll retries every failed job (of one queue, or all) that is in the
// failed list when it starts. It returns the old → new ID pairs.
func (i *Inspector) RetryAll(ctx context.Context, queue string) ([][2]string, error) {
	qs, err := i.queueNames(ctx, queue)
	if err != nil {
		return nil, err
	}
	var done [][2]string
	for _, q := range qs {
		jobs, err := i.ins.Failed(ctx, q)
		if err != nil {
			return done, err
		}
		for _, j := range jobs {
			nid, err := i.retry(ctx, j)
			if err != nil {
				return done, err
			}
			done = append(done, [2]string{j.ID, nid})
		}
	}
	return done, nil
}

// Forget removes one job from the failed list.
func (i *Inspector) Forget(ctx context.Context, id string) error {
	j, err := i.findFailed(ctx, id)
	if err != nil {
		return err
	}
	return i.ins.Forget(ctx, j.Queue, j.ID)
}

// Flush empties the failed list of every queue. It returns how many jobs it
// removed.
func (i *Inspector) Flush(ctx context.Context) (int, error) {
	qs, err := i.ins.Queues(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		k, err := i.ins.Flush(ctx, q)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Alive reports whether the job id is still to run on queue: pending,
// scheduled, waiting to retry, running, or waiting in a group. A job that
// completed, failed for good or is unknown is not alive.
func (i *Inspector) Alive(queue, id string) (bool, error) {
	return i.ins.Alive(context.Background(), queue, id)
}
