// Package outbox relays jobs saved in the database with the change that caused
// them (the transactional outbox) to Redis.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
)

// Store is where jobs wait, in the database, until the relay has put them in
// Redis.
type Store interface {
	ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]job.Envelope, error)
	DeleteOutbox(ctx context.Context, ids []string) error
	ReleaseOutbox(ctx context.Context, ids []string, reason string) error
}

// Relay moves jobs from the outbox to Redis. Each job keeps its outbox ID as
// its task ID, so a job relayed twice (two relays, or a crash between queuing
// and deleting) is queued once. Several relays may run against one database:
// each claims its batch for a lease.
type Relay struct {
	box    Store
	client *queue.Client
	log    *slog.Logger
	kick   chan struct{}
	// replica, when set, keeps rows until a replica has their jobs (replica.go).
	replica *replicaWait
}

// NewRelay returns a relay from box into client.
func NewRelay(box Store, client *queue.Client, log *slog.Logger) *Relay {
	return &Relay{box: box, client: client, log: log, kick: make(chan struct{}, 1)}
}

// Kick asks the relay to look at the outbox now (after a commit).
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

const (
	relayBatch = 200
	relayLease = 10 * time.Second // a row a replica did not confirm is relayed again after it
)

// Run relays until ctx ends. It looks at the outbox when kicked and every
// second, and backs off while Redis is down.
func (r *Relay) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-tick.C:
		}
		for {
			n, err := r.RelayOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("outbox relay: Redis refused jobs; they stay in the database and are retried", "error", err.Error())
				}
				backoff = min(max(2*backoff, 250*time.Millisecond), 5*time.Second)
				break
			}
			backoff = 0
			if n < relayBatch {
				break
			}
		}
	}
}

// RelayOnce moves one batch and returns how many jobs it moved.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	batch, err := r.box.ClaimOutbox(ctx, relayLease, relayBatch)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	sent := make([]string, 0, len(batch))
	var failed []string
	var firstErr error
	errs, confirmed := r.enqueue(ctx, batch)
	for i, err := range errs {
		e := batch[i]
		if err == nil || errors.Is(err, queue.ErrDuplicate) {
			sent = append(sent, e.ID)
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		failed = append(failed, e.ID)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A row whose jobs no replica has yet comes back after the lease.
	deleted := make([]string, 0, len(sent))
	for i, e := range batch {
		if confirmed[i] && (errs[i] == nil || errors.Is(errs[i], queue.ErrDuplicate)) {
			deleted = append(deleted, e.ID)
		}
	}
	if err := r.box.DeleteOutbox(dctx, deleted); err != nil {
		// The jobs are in Redis; the rows come back after the lease and are
		// refused as duplicates then.
		r.log.Warn("outbox relay: could not delete relayed jobs", "error", err.Error())
	}
	if len(failed) > 0 {
		_ = r.box.ReleaseOutbox(dctx, failed, firstErr.Error())
		return len(sent), firstErr
	}
	return len(sent), nil
}
