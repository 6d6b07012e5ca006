package rdb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// A job's state as errand names it, in GET /api/jobs/{id} and the CLI.
const (
	StatePending   = "pending"   // waiting to run (asynq: pending, or aggregating in a group)
	StateScheduled = "scheduled" // delayed until its due instant
	StateRunning   = "running"   // leased to a worker (asynq: active)
	StateRetrying  = "retrying"  // failed, waiting to run again (asynq: retry)
	StateCompleted = "completed" // done, kept for its retention
	StateFailed    = "failed"    // failed for good: the failed list (asynq: archived)
)

// Job is a job as errand shows it.
type Job struct {
	ID, Type, Queue string
	State           string
	// Attempts is how many attempts the job has begun: the failures that
	// counted, plus the one running or finished. It never exceeds
	// MaxAttempts, when that is known.
	Attempts    int
	MaxAttempts int // 0: unbounded, or a type this program does not know
	LastError   string
	FailedAt    time.Time // the last failure; zero if none
	NextRunAt   time.Time // when it is due; zero unless pending, scheduled or retrying
	CompletedAt time.Time // zero unless completed
	Payload     []byte
	Headers     map[string]string
}

// Alive reports whether the job is still to run: pending, scheduled, waiting
// to retry, or running.
func (j Job) Alive() bool {
	switch j.State {
	case StatePending, StateScheduled, StateRetrying, StateRunning:
		return true
	}
	return false
}

// QueueStats are the counts of one queue.
type QueueStats struct {
	Queue                                                  string
	Pending, Scheduled, Retry, Active, Failed, Aggregating int
	Completed                                              int
	ProcessedToday, FailedToday                            int
	Latency                                                time.Duration // age of the oldest pending job
	Paused                                                 bool
}

// ErrNotFound is returned for a job that is not where it was looked for.
var ErrNotFound = errors.New("no such job")

// Inspector reads jobs and queues, and removes failed jobs. It reads through
// asynq's own Inspector, so it sees exactly what the dashboard sees.
type Inspector struct {
	ins         *asynq.Inspector
	rdb         *RDB
	maxAttempts func(typ string) int
}

// NewInspector returns an inspector over c. maxAttempts gives a job type's
// limit on attempts (0: unbounded or unknown); nil knows none.
func NewInspector(c redis.UniversalClient, maxAttempts func(typ string) int) *Inspector {
	if maxAttempts == nil {
		maxAttempts = func(string) int { return 0 }
	}
	return &Inspector{ins: asynq.NewInspectorFromRedisClient(c), rdb: New(c), maxAttempts: maxAttempts}
}

// jobOf is the one mapping of asynq's task data to errand's view of a job.
func (i *Inspector) jobOf(t *asynq.TaskInfo) Job {
	j := Job{ID: t.ID, Type: t.Type, Queue: t.Queue, LastError: t.LastErr, FailedAt: t.LastFailedAt,
		Payload: t.Payload, Headers: t.Headers, MaxAttempts: i.maxAttempts(t.Type)}
	// asynq's retried count is the failures that counted; an attempt
	// running or finished is one more.
	j.Attempts = t.Retried
	switch t.State {
	case asynq.TaskStatePending, asynq.TaskStateAggregating:
		j.State = StatePending
	case asynq.TaskStateScheduled:
		j.State = StateScheduled
	case asynq.TaskStateRetry:
		j.State = StateRetrying
	case asynq.TaskStateActive:
		j.State, j.Attempts = StateRunning, t.Retried+1
	case asynq.TaskStateArchived:
		j.State, j.Attempts = StateFailed, t.Retried+1
	case asynq.TaskStateCompleted:
		j.State, j.Attempts = StateCompleted, t.Retried+1
		j.CompletedAt = t.CompletedAt
	default:
		// A state added by a later asynq: shown by its own name.
		j.State = strings.ToLower(fmt.Sprint(t.State))
	}
	if j.MaxAttempts > 0 && j.Attempts > j.MaxAttempts {
		// The attempt after the last, begun by a worker that was then lost,
		// is not shown as one more than the type allows.
		j.Attempts = j.MaxAttempts
	}
	switch j.State {
	case StatePending, StateScheduled, StateRetrying:
		j.NextRunAt = t.NextProcessAt
	}
	return j
}

func notFound(err error) bool {
	return errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound)
}

// Job finds job id on the first of queues that holds it; with no queues
// given, on every queue Redis knows. It returns ErrNotFound if none does.
func (i *Inspector) Job(ctx context.Context, id string, queues ...string) (Job, error) {
	if len(queues) == 0 {
		var err error
		if queues, err = i.Queues(ctx); err != nil {
			return Job{}, err
		}
	}
	for _, q := range queues {
		t, err := i.ins.GetTaskInfo(q, id)
		if notFound(err) {
			continue
		}
		if err != nil {
			return Job{}, fmt.Errorf("job %s on %s: %w", id, q, err)
		}
		return i.jobOf(t), nil
	}
	return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Queues returns the names of every queue Redis knows (AllQueuesKey), sorted.
func (i *Inspector) Queues(ctx context.Context) ([]string, error) {
	qs, err := i.ins.Queues()
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	sort.Strings(qs)
	return qs, nil
}

// Stats returns the counts of queue q, which must be known to Redis.
func (i *Inspector) Stats(ctx context.Context, q string) (QueueStats, error) {
	info, err := i.ins.GetQueueInfo(q)
	if err != nil {
		return QueueStats{}, fmt.Errorf("queue %s: %w", q, err)
	}
	return QueueStats{Queue: q,
		Pending: info.Pending, Scheduled: info.Scheduled, Retry: info.Retry, Active: info.Active,
		Failed: info.Archived, Aggregating: info.Aggregating, Completed: info.Completed,
		ProcessedToday: info.Processed, FailedToday: info.Failed,
		Latency: info.Latency, Paused: info.Paused,
	}, nil
}

// failedPage is how many failed jobs one read of the failed list takes.
const failedPage = 500

// Failed lists the failed jobs of queue q (none for a queue Redis does not
// know).
func (i *Inspector) Failed(ctx context.Context, q string) ([]Job, error) {
	var out []Job
	for page := 1; ; page++ {
		tasks, err := i.ins.ListArchivedTasks(q, asynq.PageSize(failedPage), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("failed list of %s: %w", q, err)
		}
		for _, t := range tasks {
			out = append(out, i.jobOf(t))
		}
		if len(tasks) < failedPage {
			return out, nil
		}
	}
}

// FindFailed finds job id in the failed list of any queue; ErrNotFound if it
// is in none.
func (i *Inspector) FindFailed(ctx context.Context, id string) (Job, error) {
	qs, err := i.Queues(ctx)
	if err != nil {
		return Job{}, err
	}
	for _, q := range qs {
		j, err := i.Job(ctx, id, q)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Job{}, err
		}
		if j.State == StateFailed {
			return j, nil
		}
	}
	return Job{}, fmt.Errorf("%w in the failed list: %s", ErrNotFound, id)
}

// Retry queues again, as the new job again, the job failed that is in the
// failed list, then removes failed from the list. Queued first, removed
// second: a crash in between leaves a duplicate in the failed list, never a
// lost job.
func (i *Inspector) Retry(ctx context.Context, failed Job, again Task) error {
	if err := i.rdb.Enqueue(ctx, again); err != nil {
		return fmt.Errorf("retry %s: %w", failed.ID, err)
	}
	if err := i.ins.DeleteTask(failed.Queue, failed.ID); err != nil {
		return fmt.Errorf("retry %s: queued again as %s but could not remove it from the failed list: %w", failed.ID, again.ID, err)
	}
	return nil
}

// Forget removes job id of queue q (which is not running).
func (i *Inspector) Forget(ctx context.Context, q, id string) error {
	if err := i.ins.DeleteTask(q, id); err != nil {
		return fmt.Errorf("remove %s from %s: %w", id, q, err)
	}
	return nil
}

// Flush empties the failed list of queue q and returns how many jobs it
// removed.
func (i *Inspector) Flush(ctx context.Context, q string) (int, error) {
	n, err := i.ins.DeleteAllArchivedTasks(q)
	if err != nil {
		return n, fmt.Errorf("flush %s: %w", q, err)
	}
	return n, nil
}

// Alive reports whether job id of queue q is still to run (Job.Alive). A job
// that completed, failed for good or is unknown is not.
func (i *Inspector) Alive(ctx context.Context, q, id string) (bool, error) {
	j, err := i.Job(ctx, id, q)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return j.Alive(), nil
}
