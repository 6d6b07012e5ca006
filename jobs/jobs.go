// Package jobs holds errand's job types, one file each: the payload (with its
// validation), the type name, the defaults (queue, delay, attempts, backoff) and
// the handler. A new side effect is one new file here plus a line in Register.
package jobs

import (
	"log/slog"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/store"
	"github.com/redis/go-redis/v9"
)

// Deps is what the handlers need. A process that only enqueues passes a Deps
// with Mailer nil and registers the types without handlers.
type Deps struct {
	Config *config.Config
	Mailer *mail.Mailer
	Log    *slog.Logger
	// Store is the database; the worker opens it too (order:sync_tracking
	// marks the shipment synced).
	Store *store.Store
	// Registry and Redis let periodic jobs inspect and queue other jobs.
	Registry *job.Registry
	Redis    redis.UniversalClient
}

// Register adds every job type to r. With deps.Mailer nil the types are
// registered for enqueueing only.
func Register(r *job.Registry, deps Deps) {
	if deps.Mailer == nil {
		job.Register[WelcomeEmail](r, nil)
		job.Register[NotifyStaff](r, nil)
		job.Register[SyncCRM](r, nil)
		job.Register[PushFulfillment](r, nil)
		job.Register[SyncTracking](r, nil)
		job.Register[Digest](r, nil)
		job.Register[ReconcileShipments](r, nil)
		job.Register[Outcome](r, nil)
		job.Register[Noop](r, nil)
		return
	}
	job.Register(r, (&welcomeEmail{deps}).Work)
	job.Register(r, (&notifyStaff{deps}).Work)
	job.Register(r, (&syncCRM{deps}).Work)
	job.Register(r, (&pushFulfillment{deps}).Work)
	job.Register(r, (&syncTracking{deps}).Work)
	job.Register(r, (&escalate{deps}).Work)
	job.Register(r, (&reconcileShipments{deps}).Work)
	job.Register(r, (&callback{deps}).Work)
	job.Register(r, Noop{}.Work)
}
