// Package failed is errand's durable failed list: `errand failed list |
// retry | forget | flush | prune`. The list lives in the database (a worker
// writes each final failure there before it archives the job in Redis), and
// Redis's archive, which the dashboard shows, is kept in step: a job retried,
// forgotten, flushed or pruned leaves both. A failure found in the archive
// only (the database could not be written when it failed) is adopted into
// the database by the list's next read, so nothing vanishes; a Redis that
// lost its data leaves the list whole, and a retry queues from the database.
package failed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/history"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/store"
	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for an ID that is not in the failed list.
var ErrNotFound = errors.New("no failed job with that id")

// chunk is how many jobs a retry or prune of many handles at once (one
// database transaction, one Redis round trip to queue them).
const chunk = 500

// Progress is told, after each chunk, how many of total jobs are done.
type Progress func(done, total int)

// List is the failed list over the database and Redis.
type List struct {
	st     store.History
	reg    *job.Registry
	ins    *rdb.Inspector
	client *queue.Client
}

// New returns the failed list of st, kept in step with Redis at c.
func New(reg *job.Registry, c redis.UniversalClient, st store.History) *List {
	maxAttempts := func(typ string) int {
		if def, err := reg.Lookup(typ); err == nil && !def.Unbounded {
			return def.MaxAttempts
		}
		return 0
	}
	return &List{st: st, reg: reg, ins: rdb.NewInspector(c, maxAttempts), client: queue.NewClient(reg, c)}
}

// adopt writes into the database every job of Redis's archive it does not
// hold, and returns how many it wrote.
func (l *List) adopt(ctx context.Context) (int, error) {
	have, err := l.st.FailedJobs(ctx, store.FailedFilter{})
	if err != nil {
		return 0, err
	}
	known := make(map[string]bool, len(have))
	for _, f := range have {
		known[f.ID] = true
	}
	qs, err := l.ins.Queues(ctx)
	if err != nil {
		return 0, err
	}
	var missing []store.FailedJob
	for _, q := range qs {
		jobs, err := l.ins.Failed(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, j := range jobs {
			if known[j.ID] {
				continue
			}
			f := store.FailedJob{ID: j.ID, Type: j.Type, Queue: j.Queue, RunPayload: j.Payload,
				Attempts: j.Attempts, Error: j.LastError, FailedAt: j.FailedAt}
			if f.RunPayload == nil {
				f.RunPayload = []byte{}
			}
			history.FillFromRegistry(l.reg, &f, j.Headers)
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	return l.st.AdoptFailed(ctx, missing)
}

// Jobs lists the failed jobs of one queue ("" for all), oldest failure
// first.
func (l *List) Jobs(ctx context.Context, queue string) ([]store.FailedJob, error) {
	if _, err := l.adopt(ctx); err != nil {
		return nil, err
	}
	return l.st.FailedJobs(ctx, store.FailedFilter{Queue: queue})
}

// find returns job id of the failed list.
func (l *List) find(ctx context.Context, id string) (*store.FailedJob, error) {
	f, err := l.st.FailedJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Perhaps only in Redis's archive: adopt, then look again.
		if _, err := l.adopt(ctx); err != nil {
			return nil, err
		}
		f, err = l.st.FailedJob(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return f, err
}

// Retry queues failed job id again, with the same id and its full attempts,
// and takes it off the list.
func (l *List) Retry(ctx context.Context, id string) error {
	f, err := l.find(ctx, id)
	if err != nil {
		return err
	}
	return l.retry(ctx, []store.FailedJob{*f})
}

// RetryAll retries every failed job (of one queue, or all) and returns how
// many it queued.
func (l *List) RetryAll(ctx context.Context, queue string, progress Progress) (int, error) {
	jobs, err := l.Jobs(ctx, queue)
	if err != nil {
		return 0, err
	}
	return l.inChunks(jobs, progress, func(part []store.FailedJob) error { return l.retry(ctx, part) })
}

// inChunks runs do on jobs a chunk at a time, telling progress after each.
func (l *List) inChunks(jobs []store.FailedJob, progress Progress, do func([]store.FailedJob) error) (int, error) {
	done := 0
	for len(jobs) > 0 {
		part := jobs[:min(len(jobs), chunk)]
		jobs = jobs[len(part):]
		if err := do(part); err != nil {
			return done, err
		}
		done += len(part)
		if progress != nil {
			progress(done, done+len(jobs))
		}
	}
	return done, nil
}

// retry queues jobs again under their own ids: each is first taken out of
// Redis's archive (an id can be queued only once), then queued from the
// database's copy, then taken off the database's list — as it was read, so a
// job that already failed again stays listed. A crash in between leaves the
// job on the database's list, from which a retry queues it.
func (l *List) retry(ctx context.Context, jobs []store.FailedJob) error {
	now := time.Now()
	es := make([]job.Envelope, len(jobs))
	for i, f := range jobs {
		if err := l.unarchive(ctx, f); err != nil {
			return err
		}
		// Queued now: the throttle deadline counts from the retry.
		es[i] = job.Envelope{ID: f.ID, Type: f.Type, Queue: f.Queue, Payload: f.RunPayload, QueuedAt: now, DueAt: now,
			Callback: f.Callback, Entity: f.Entity}
	}
	for i, err := range l.client.EnqueueMany(ctx, es) {
		// A duplicate is a job already queued again: what a retry wants.
		if err != nil && !errors.Is(err, queue.ErrDuplicate) {
			return fmt.Errorf("retry %s: %w", es[i].ID, err)
		}
	}
	return l.st.RemoveFailed(ctx, jobs, true)
}

// unarchive removes f from Redis's archive; one that is not there (Redis
// lost it, or it was never archived) is fine.
func (l *List) unarchive(ctx context.Context, f store.FailedJob) error {
	err := l.ins.Forget(ctx, f.Queue, f.ID)
	if err == nil {
		return nil
	}
	if j, jerr := l.ins.Job(ctx, f.ID, f.Queue); errors.Is(jerr, rdb.ErrNotFound) || (jerr == nil && j.State != rdb.StateFailed) {
		return nil
	}
	return err
}

// Forget takes failed job id off the list, and out of Redis's archive.
func (l *List) Forget(ctx context.Context, id string) error {
	f, err := l.find(ctx, id)
	if err != nil {
		return err
	}
	if err := l.unarchive(ctx, *f); err != nil {
		return err
	}
	return l.st.RemoveFailed(ctx, []store.FailedJob{*f}, false)
}

// Flush empties the failed list, and Redis's archive, and returns how many
// jobs it removed.
func (l *List) Flush(ctx context.Context) (int, error) {
	jobs, err := l.Jobs(ctx, "")
	if err != nil {
		return 0, err
	}
	qs, err := l.ins.Queues(ctx)
	if err != nil {
		return 0, err
	}
	for _, q := range qs {
		if _, err := l.ins.Flush(ctx, q); err != nil {
			return 0, err
		}
	}
	return len(jobs), l.st.RemoveFailed(ctx, jobs, false)
}

// Prune takes off the list (and out of Redis's archive) every job that
// failed more than olderThan ago, and returns how many.
func (l *List) Prune(ctx context.Context, olderThan time.Duration, progress Progress) (int, error) {
	if _, err := l.adopt(ctx); err != nil {
		return 0, err
	}
	jobs, err := l.st.FailedJobs(ctx, store.FailedFilter{Before: time.Now().Add(-olderThan)})
	if err != nil {
		return 0, err
	}
	return l.inChunks(jobs, progress, func(part []store.FailedJob) error {
		for _, f := range part {
			if err := l.unarchive(ctx, f); err != nil {
				return err
			}
		}
		return l.st.RemoveFailed(ctx, part, false)
	})
}
