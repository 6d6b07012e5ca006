package queue

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Inspector answers `errand queues` and `errand failed …`.
type Inspector struct {
	reg    *job.Registry
	ins    *asynq.Inspector
	client *Client
}

// NewInspector returns an inspector over rdb.
func NewInspector(reg *job.Registry, rdb redis.UniversalClient) *Inspector {
	return &Inspector{reg: reg, ins: asynq.NewInspectorFromRedisClient(rdb), client: NewClient(reg, rdb)}
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
	ProcessedToday int     `json:"processed_today"`
	FailedToday    int     `json:"failed_today"`
	LatencySeconds float64 `json:"latency_seconds"`
	Paused         bool    `json:"paused"`
}

// Queues returns the stats of every configured queue and any other queue
// found in Redis.
func (i *Inspector) Queues(ctx context.Context) ([]QueueStats, error) {
	names := map[string]bool{}
	for q := range i.reg.Queues() {
		names[q] = true
	}
	existing, err := i.ins.Queues()
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	for _, q := range existing {
		names[q] = true
	}
	exists := map[string]bool{}
	for _, q := range existing {
		exists[q] = true
	}
	var out []QueueStats
	for q := range names {
		s := QueueStats{Queue: q, Weight: i.reg.Queues()[q]}
		if exists[q] {
			info, err := i.ins.GetQueueInfo(q)
			if err != nil {
				return nil, fmt.Errorf("queue %s: %w", q, err)
			}
			s.Pending, s.Scheduled, s.Retry, s.Active = info.Pending, info.Scheduled, info.Retry, info.Active
			s.Failed, s.Aggregating = info.Archived, info.Aggregating
			s.ProcessedToday, s.FailedToday = info.Processed, info.Failed
			s.LatencySeconds = info.Latency.Seconds()
			s.Paused = info.Paused
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

func (i *Inspector) queueNames(only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	qs, err := i.ins.Queues()
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	sort.Strings(qs)
	return qs, nil
}

// Failed lists the failed jobs, oldest failure first, of one queue or all.
func (i *Inspector) Failed(ctx context.Context, queue string) ([]FailedJob, error) {
	qs, err := i.queueNames(queue)
	if err != nil {
		return nil, err
	}
	var out []FailedJob
	for _, q := range qs {
		for page := 1; ; page++ {
			tasks, err := i.ins.ListArchivedTasks(q, asynq.PageSize(500), asynq.Page(page))
			if err != nil {
				if errors.Is(err, asynq.ErrQueueNotFound) {
					break
				}
				return nil, fmt.Errorf("failed list %s: %w", q, err)
			}
			for _, t := range tasks {
				out = append(out, i.failedJob(t))
			}
			if len(tasks) < 500 {
				break
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].FailedAt.Before(out[b].FailedAt) })
	return out, nil
}

func (i *Inspector) failedJob(t *asynq.TaskInfo) FailedJob {
	f := FailedJob{ID: t.ID, Type: t.Type, Queue: t.Queue, Error: t.LastErr, FailedAt: t.LastFailedAt, Payload: string(t.Payload)}
	f.Attempts = t.Retried + 1
	if def, err := i.reg.Lookup(t.Type); err == nil && !def.Unbounded {
		f.MaxAttempts = def.MaxAttempts
		if f.Attempts > def.MaxAttempts {
			f.Attempts = def.MaxAttempts
		}
	}
	if q, ok := headerMillis(t.Headers, headerQueued); ok {
		f.QueuedAt = q
	}
	return f
}

// ErrNotFound is returned for an ID that is not in the failed list.
var ErrNotFound = errors.New("no failed job with that id")

func (i *Inspector) findFailed(id string) (*asynq.TaskInfo, error) {
	qs, err := i.queueNames("")
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		t, err := i.ins.GetTaskInfo(q, id)
		if err != nil {
			continue
		}
		if t.State == asynq.TaskStateArchived {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Retry queues a failed job again with its full attempts, as a new job (new
// ID, remembering the old one), then removes it from the failed list. It
// returns the new job's ID.
func (i *Inspector) Retry(ctx context.Context, id string) (string, error) {
	t, err := i.findFailed(id)
	if err != nil {
		return "", err
	}
	return i.retryTask(ctx, t)
}

func (i *Inspector) retryTask(ctx context.Context, t *asynq.TaskInfo) (string, error) {
	now := time.Now()
	e := job.Envelope{ID: job.NewID(now), Type: t.Type, Queue: t.Queue, Payload: t.Payload, QueuedAt: now, DueAt: now}
	if err := i.client.enqueue(ctx, e, map[string]string{headerRetryOf: t.ID}); err != nil {
		return "", fmt.Errorf("retry %s: %w", t.ID, err)
	}
	// Queued first, removed second: a crash in between leaves a duplicate in
	// the failed list, never a lost job.
	if err := i.ins.DeleteTask(t.Queue, t.ID); err != nil {
		return e.ID, fmt.Errorf("retry %s: queued again as %s but could not remove it from the failed list: %w", t.ID, e.ID, err)
	}
	return e.ID, nil
}

// RetryAll retries every failed job (of one queue, or all). It returns the
// old → new ID pairs.
func (i *Inspector) RetryAll(ctx context.Context, queue string) ([][2]string, error) {
	qs, err := i.queueNames(queue)
	if err != nil {
		return nil, err
	}
	var done [][2]string
	for _, q := range qs {
		for {
			tasks, err := i.ins.ListArchivedTasks(q, asynq.PageSize(500), asynq.Page(1))
			if err != nil || len(tasks) == 0 {
				break
			}
			for _, t := range tasks {
				nid, err := i.retryTask(ctx, t)
				if err != nil {
					return done, err
				}
				done = append(done, [2]string{t.ID, nid})
			}
		}
	}
	return done, nil
}

// Forget removes one job from the failed list.
func (i *Inspector) Forget(ctx context.Context, id string) error {
	t, err := i.findFailed(id)
	if err != nil {
		return err
	}
	return i.ins.DeleteTask(t.Queue, t.ID)
}

// Flush empties the failed list of every queue. It returns how many jobs it
// removed.
func (i *Inspector) Flush(ctx context.Context) (int, error) {
	qs, err := i.queueNames("")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		k, err := i.ins.DeleteAllArchivedTasks(q)
		if err != nil {
			return n, fmt.Errorf("flush %s: %w", q, err)
		}
		n += k
	}
	return n, nil
}

// FormatAge prints a duration the way a person reads it in a table.
func FormatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.Itoa(int(d.Milliseconds())) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// Alive reports whether the job id is still to run on queue: pending,
// scheduled, waiting to retry, running, or waiting in a group. A job that
// completed, failed for good or is unknown is not alive.
func (i *Inspector) Alive(queue, id string) (bool, error) {
	t, err := i.ins.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch t.State {
	case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateRetry, asynq.TaskStateActive, asynq.TaskStateAggregating:
		return true, nil
	}
	return false, nil
}
