package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/hibiken/asynq"
)

// Periodic queues args every interval through asynq's scheduler. Every worker
// runs one; Unique keeps the copies one scheduler run would make from piling
// up, and the periodic jobs themselves are written to be harmless when two
// runs overlap.
type Periodic struct {
	s *asynq.Scheduler
}

// NewPeriodic returns a scheduler with its own connection to Redis (asynq's
// scheduler insists on closing the connection it was given).
func NewPeriodic(conn asynq.RedisConnOpt, log *slog.Logger) *Periodic {
	return &Periodic{s: asynq.NewScheduler(conn, &asynq.SchedulerOpts{
		Logger:   asynqLogger{log.With("component", "scheduler")},
		LogLevel: asynq.ErrorLevel,
		Location: time.UTC,
		PostEnqueueFunc: func(_ *asynq.TaskInfo, err error) {
			if err == nil || errors.Is(err, asynq.ErrDuplicateTask) {
				return // queued, or another worker's scheduler queued this turn's run
			}
			log.Warn("periodic job not queued", "error", err.Error())
		},
	})}
}

// Every queues args every interval.
func (p *Periodic) Every(reg *job.Registry, interval time.Duration, args job.Args) error {
	e, err := reg.Prepare(args)
	if err != nil {
		return err
	}
	def, _ := reg.Lookup(e.Type)
	_, err = p.s.Register(fmt.Sprintf("@every %s", interval), asynq.NewTask(e.Type, e.Payload),
		asynq.Queue(e.Queue), asynq.MaxRetry(maxRetrySentry), asynq.Timeout(def.Timeout+timeoutGrace),
		asynq.Unique(max(interval/2, time.Second)))
	return err
}

// Start starts the scheduler.
func (p *Periodic) Start() error { return p.s.Start() }

// Shutdown stops it.
func (p *Periodic) Shutdown() { p.s.Shutdown() }
