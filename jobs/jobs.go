// Package jobs holds errand's job types, one file each: the payload (with its
// validation), the type name, the defaults (queue, delay, attempts, backoff) and
// the handler. A new side effect is one new file here plus a line in Register.
package jobs

import (
	"log/slog"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/mail"
	"github.com/errandhq/errand/internal/queue"
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
	Registry *queue.Registry
	Redis    redis.UniversalClient
}

// Register adds every job type to r. With deps.Mailer nil the types are
// registered for enqueueing only.
func Register(r *queue.Registry, deps Deps) {
	if deps.Mailer == nil {
		queue.Register[WelcomeEmail](r, nil)
		queue.Register[NotifyStaff](r, nil)
		queue.Register[SyncCRM](r, nil)
		queue.Register[PushFulfillment](r, nil)
		queue.Register[SyncTracking](r, nil)
		queue.Register[queue.Digest](r, nil)
		queue.Register[ReconcileShipments](r, nil)
		queue.Register[queue.Outcome](r, nil)
		queue.Register[Noop](r, nil)
		return
	}
	queue.Register(r, (&welcomeEmail{deps}).Work)
	queue.Register(r, (&notifyStaff{deps}).Work)
	queue.Register(r, (&syncCRM{deps}).Work)
	queue.Register(r, (&pushFulfillment{deps}).Work)
	queue.Register(r, (&syncTracking{deps}).Work)
	queue.Register(r, (&escalate{deps}).Work)
	queue.Register(r, (&reconcileShipments{deps}).Work)
	queue.Register(r, (&callback{deps}).Work)
	queue.Register(r, Noop{}.Work)
}
