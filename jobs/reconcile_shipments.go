package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
)

// ReconcileShipments finds shipments whose tracking has not reached Shopify
// reconcile.age after the callback and whose sync job is no longer alive
// (failed for good, or lost), and queues the sync again: the backfill the
// seed's author had to do by hand, made automatic. It runs every
// reconcile.interval.
type ReconcileShipments struct{}

// Kind implements job.Args.
func (ReconcileShipments) Kind() string { return "ops:reconcile_shipments" }

// Defaults implements job.Args.
func (ReconcileShipments) Defaults() job.Defaults {
	return job.Defaults{Queue: "default", MaxAttempts: 1, Timeout: 2 * time.Minute}
}

type reconcileShipments struct{ Deps }

// Work queues each stuck shipment once. Two runs at the same time (two
// schedulers) queue it once too: the new job's id is derived from the
// shipment and its requeue count, and the count moves by compare-and-set.
func (h *reconcileShipments) Work(ctx context.Context, _ ReconcileShipments) error {
	cfg := h.Config.Reconcile
	stuck, err := h.Store.PendingShipments(ctx, time.Now().Add(-cfg.Age), 500)
	if err != nil {
		return err
	}
	if len(stuck) == 0 {
		return nil
	}
	ins := queue.NewInspector(h.Registry, h.Redis)
	client := queue.NewClient(h.Registry, h.Redis)
	defer client.Close()
	def, err := h.Registry.Lookup(SyncTracking{}.Kind())
	if err != nil {
		return err
	}
	requeued := 0
	for _, sh := range stuck {
		if sh.JobID != "" {
			alive, err := ins.Alive(def.Queue, sh.JobID)
			if err != nil {
				return err
			}
			if alive {
				continue
			}
		}
		if sh.Requeues >= cfg.MaxRequeues {
			job.Logger(ctx).Warn("shipment still not synced to Shopify; not queued again", "shipment_id", sh.ID, "order_id", sh.OrderID, "requeues", sh.Requeues)
			continue
		}
		n := sh.Requeues + 1
		id := fmt.Sprintf("shipment-%d-requeue-%d", sh.ID, n)
		e, err := h.Registry.Prepare(SyncTracking{ShipmentID: sh.ID, OrderID: sh.OrderID, TrackingNumber: sh.TrackingNumber, Carrier: sh.Carrier, TrackingURL: sh.TrackingURL},
			job.WithID(id), job.Delay(0))
		if err != nil {
			return err
		}
		if err := h.Store.RequeueShipment(ctx, sh.ID, n, id); errors.Is(err, store.ErrDuplicate) {
			continue // another run took it
		} else if err != nil {
			return err
		}
		if err := client.Enqueue(ctx, e); err != nil && !errors.Is(err, queue.ErrDuplicate) {
			return err
		}
		requeued++
		job.Logger(ctx).Info("stuck shipment queued again", "shipment_id", sh.ID, "order_id", sh.OrderID, "new_job", id, "previous_job", sh.JobID)
	}
	if requeued > 0 {
		job.Logger(ctx).Info("reconcile: shipments queued again", "count", requeued)
	}
	return nil
}
