package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

// ReconcileShipments finds shipments whose tracking has not reached Shopify
// reconcile.age after the callback and whose sync job is no longer alive
// (failed for good, or lost), and queues the sync again: the backfill the
// seed's author had to do by hand, made automatic. It runs at the ticks of
// its [[schedule]] entry (every 5 minutes by default).
type ReconcileShipments struct{}

// Kind implements job.Args.
func (ReconcileShipments) Kind() string { return "ops:reconcile_shipments" }

// Defaults implements job.Args.
func (ReconcileShipments) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", MaxAttempts: 1, Timeout: 2 * time.Minute}
}

// reconcileShipments reads shipments from the database, asks Redis whether
// their sync job is alive and queues it again.
type reconcileShipments struct {
	cfg    config.Reconcile
	store  store.Store
	reg    *job.Registry
	ins    *queue.Inspector
	client *queue.Client
}

func newReconcileShipments(d Deps) (*reconcileShipments, error) {
	return &reconcileShipments{cfg: d.Config.Reconcile, store: d.Store, reg: d.Registry,
		ins: queue.NewInspector(d.Registry, d.Redis), client: queue.NewClient(d.Registry, d.Redis)}, nil
}

// Work queues each stuck shipment once. Two runs at the same time (two
// schedulers) queue it once too: the new job's id is derived from the
// shipment and its requeue count, and the count moves by compare-and-set.
func (h *reconcileShipments) Work(ctx context.Context, _ ReconcileShipments) error {
	stuck, err := h.store.PendingShipments(ctx, time.Now().Add(-h.cfg.Age), 500)
	if err != nil {
		return err
	}
	if len(stuck) == 0 {
		return nil
	}
	def, err := h.reg.Lookup(SyncTracking{}.Kind())
	if err != nil {
		return err
	}
	requeued := 0
	for _, sh := range stuck {
		if sh.JobID != "" {
			alive, err := h.ins.Alive(def.Queue, sh.JobID)
			if err != nil {
				return err
			}
			if alive {
				continue
			}
		}
		if sh.Requeues >= h.cfg.MaxRequeues {
			job.Logger(ctx).Warn("shipment still not synced to Shopify; not queued again", "shipment_id", sh.ID, "order_id", sh.OrderID, "requeues", sh.Requeues)
			continue
		}
		n := sh.Requeues + 1
		id := fmt.Sprintf("shipment-%d-requeue-%d", sh.ID, n)
		e, err := h.reg.Prepare(SyncTracking{ShipmentID: sh.ID, OrderID: sh.OrderID, TrackingNumber: sh.TrackingNumber, Carrier: sh.Carrier, TrackingURL: sh.TrackingURL},
			job.WithID(id), job.Delay(0))
		if err != nil {
			return err
		}
		if err := h.store.RequeueShipment(ctx, sh.ID, n, id); errors.Is(err, store.ErrDuplicate) {
			continue // another run took it
		} else if err != nil {
			return err
		}
		if err := h.client.Enqueue(ctx, e); err != nil && !errors.Is(err, queue.ErrDuplicate) {
			return err
		}
		// On the order's timeline; a history not written is no reason to
		// queue the job again.
		if err := h.store.RecordQueued(ctx, []job.Envelope{e}); err != nil {
			job.Logger(ctx).Warn("reconcile: the requeued job's history not written", "job_id", id, "error", err.Error())
		}
		requeued++
		job.Logger(ctx).Info("stuck shipment queued again", "shipment_id", sh.ID, "order_id", sh.OrderID, "new_job", id, "previous_job", sh.JobID)
	}
	if requeued > 0 {
		job.Logger(ctx).Info("reconcile: shipments queued again", "count", requeued)
	}
	return nil
}
