// Package jobs holds errand's job types, one file each: the payload (with its
// validation), the type name, the defaults (queue, delay, attempts, backoff),
// the handler — a struct holding the clients it calls — and the handler's
// constructor. A new side effect is one new file here plus its line in All.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/store"
	"github.com/redis/go-redis/v9"
)

// All is every job type errand knows, each with the constructor of its
// handler: the one list that `errand serve` and the CLI register to queue
// jobs (Register) and `errand worker` registers to run them (Handle). The
// program never changes it; a test may append a type of its own.
var All = []Job{
	Of[WelcomeEmail](newWelcomeEmail),
	Of[NotifyStaff](newNotifyStaff),
	Of[SyncCRM](newSyncCRM),
	Of[PushFulfillment](newPushFulfillment),
	Of[SyncTracking](newSyncTracking),
	Of[Digest](newEscalate),
	Of[ReconcileShipments](newReconcileShipments),
	Of[Outcome](newCallback),
	Of[Noop](newNoop),
}

// Deps is what a worker hands every handler's constructor: the configuration
// and errand's own resources. Each constructor builds the clients of the
// services it calls from Config, once, at start-up.
type Deps struct {
	Config *config.Config
	Log    *slog.Logger
	// Mailer sends through [smtp]: the welcome email and the developers'
	// escalations.
	Mailer *mail.Mailer
	// Store is the database: orders, shipments, callbacks.
	Store store.Store
	// Registry and Redis let jobs queue and inspect other jobs.
	Registry *job.Registry
	Redis    redis.UniversalClient
	// Gate is [limits]: every service's client asks it before each call
	// (nil lets every call go).
	Gate *limit.Gate
}

// Handler runs jobs of payload type A.
type Handler[A job.Args] interface {
	Work(ctx context.Context, args A) error
}

// Job is one entry of All: a payload type and how to build its handler.
type Job struct {
	kind     string
	register func(r *job.Registry)
	// handle builds the handler and gives it to r; when building fails, it
	// gives r a handler that fails every job with that error instead, and
	// returns the error.
	handle func(r *job.Registry, d Deps) error
}

// Of is the entry of payload type A whose handler newHandler builds. The
// constructor checks the settings of every service the handler calls
// (typically the service's Config.Validate, through its client's New), so
// that a worker that would run A stops at start with the keys to fix instead
// of failing each job.
func Of[A job.Args, H Handler[A]](newHandler func(Deps) (H, error)) Job {
	var zero A
	return Job{
		kind:     zero.Kind(),
		register: func(r *job.Registry) { job.Register[A](r, nil) },
		handle: func(r *job.Registry, d Deps) error {
			h, err := newHandler(d)
			if err == nil {
				// Each run's later calls of a service wait their turn in
				// place (limit.InJob) instead of giving up half-way.
				return job.Handle(r, func(ctx context.Context, a A) error { return h.Work(limit.InJob(ctx), a) })
			}
			unable := fmt.Errorf("%s cannot run on this worker: %w", zero.Kind(), err)
			if herr := job.Handle(r, func(context.Context, A) error { return errand.PermanentError(unable) }); herr != nil {
				return herr
			}
			return err
		},
	}
}

// Kind is the job type of the entry.
func (j Job) Kind() string { return j.kind }

// Register adds every job type of All to r without handlers: what a process
// that only queues jobs needs (`errand serve`, the CLI). Call r.Configure
// after it.
func Register(r *job.Registry) {
	for _, j := range All {
		j.register(r)
	}
}

// Handle builds the handler of every job type of All, once, and gives it to r
// (registered with Register and configured). takes says whether this worker
// works a queue: a type on a queue it takes must build — its constructor's
// error stops the worker, naming the type, its queue and the settings to fix —
// while a type on another queue that cannot build is left to the workers of
// that queue (a job of it sent here anyway fails for good, saying why). So a
// worker started with --queues emails needs no [crm].
func Handle(r *job.Registry, d Deps, takes func(queue string) bool) error {
	var bad []string
	for _, j := range All {
		def, err := r.Lookup(j.kind)
		if err != nil {
			return err
		}
		if err := j.handle(r, d); err != nil && takes(def.Queue) {
			bad = append(bad, fmt.Sprintf("%s (queue %s): %v", j.kind, def.Queue, err))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return errors.New(strings.Join(bad, "; ") +
		" — set these, or start this worker with --queues naming only queues whose jobs it can run")
}
