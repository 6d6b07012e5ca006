package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/redis/go-redis/v9"
)

// Scheduler queues its entries' jobs at their ticks. Every worker runs one.
type Scheduler struct {
	entries []*Entry
	reg     *job.Registry
	client  *queue.Client
	rdb     redis.UniversalClient
	log     *slog.Logger
}

// New returns a scheduler of entries (from Parse) over Redis c.
func New(entries []*Entry, reg *job.Registry, c redis.UniversalClient, log *slog.Logger) *Scheduler {
	return &Scheduler{entries: entries, reg: reg, client: queue.NewClient(reg, c), rdb: c, log: log.With("component", "scheduler")}
}

// Run queues each tick as it comes until ctx ends. A tick that cannot be
// queued (Redis away) is tried again every second, within CatchUp.
func (s *Scheduler) Run(ctx context.Context) {
	if len(s.entries) == 0 {
		return
	}
	// Ticks before this instant are another worker's, or, for an entry that
	// never ran, nobody's: a new entry starts with its next tick.
	started := time.Now()
	for _, e := range s.entries {
		s.log.Info("scheduled", "schedule", e.Name, "type", e.Type, "when", e.When(), "next_run", e.Next(started).UTC().Format(time.RFC3339))
	}
	for {
		now := time.Now()
		wake := s.entries[0].Next(now)
		for _, e := range s.entries[1:] {
			if n := e.Next(now); n.Before(wake) {
				wake = n
			}
		}
		if err := s.queueDue(ctx, started, now); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("scheduled job not queued; trying again", "error", err.Error())
			wake = now.Add(time.Second)
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// queueDue queues every entry's ticks up to now that no worker has queued.
func (s *Scheduler) queueDue(ctx context.Context, started, now time.Time) error {
	last, err := LastRuns(ctx, s.rdb, s.entries)
	if err != nil {
		return err
	}
	for i, e := range s.entries {
		from := last[i]
		if from.IsZero() {
			from = started
		}
		if oldest := now.Add(-CatchUp); from.Before(oldest) {
			from = oldest
		}
		for _, tick := range e.ticks(from, now, MaxCatchUp) {
			if err := s.queue(ctx, e, tick); err != nil {
				return err
			}
		}
	}
	return nil
}

// queue queues e's job of tick, unless another worker has, and records the
// tick as e's last.
func (s *Scheduler) queue(ctx context.Context, e *Entry, tick time.Time) error {
	env, err := s.reg.PrepareRaw(e.Type, e.Payload, job.WithID(e.JobID(tick)), job.Delay(0))
	if err != nil {
		return fmt.Errorf("%s: %w", e.Name, err)
	}
	switch err := s.client.Enqueue(ctx, env); {
	case errors.Is(err, queue.ErrDuplicate):
		// Another worker queued this tick.
	case err != nil:
		return fmt.Errorf("%s: %w", e.Name, err)
	default:
		s.log.Debug("scheduled job queued", "schedule", e.Name, "job_id", env.ID, "type", e.Type, "tick", tick.UTC().Format(time.RFC3339))
	}
	// GT: a worker that queued an older tick late never moves it back.
	if err := s.rdb.ZAddGT(ctx, rdb.SchedulesKey, redis.Z{Score: float64(tick.UnixMilli()), Member: e.Name}).Err(); err != nil {
		return fmt.Errorf("%s: record the run: %w", e.Name, err)
	}
	return nil
}

// LastRuns returns the last tick queued of each entry, zero for one that
// never ran.
func LastRuns(ctx context.Context, c redis.UniversalClient, entries []*Entry) ([]time.Time, error) {
	out := make([]time.Time, len(entries))
	if len(entries) == 0 {
		return out, nil
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	scores, err := c.ZMScore(ctx, rdb.SchedulesKey, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("schedule: read last runs: %w", err)
	}
	for i, ms := range scores {
		if ms > 0 {
			out[i] = time.UnixMilli(int64(ms))
		}
	}
	return out, nil
}
