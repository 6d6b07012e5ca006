package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynq"
)

// A shipment still pending after reconcile.age whose sync job is gone is
// queued again, once: the next run finds the new job alive and leaves it.
func TestReconcileRequeuesAStuckShipmentOnce(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Reconcile.Age = time.Millisecond })
	s := e.saveShipment(1001, "1Z999")
	time.Sleep(10 * time.Millisecond) // older than reconcile.age
	for range 2 {
		if err := e.run(jobs.ReconcileShipments{}); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := e.store.GetShipment(context.Background(), s.ShipmentID)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Requeues != 1 || sh.JobID == "" {
		t.Fatalf("shipment %+v, want queued again once", sh)
	}
	tasks, err := asynq.NewInspectorFromRedisClient(e.redis.Client()).ListPendingTasks("shopify")
	if err != nil || len(tasks) != 1 || tasks[0].ID != sh.JobID || tasks[0].Type != "order:sync_tracking" {
		t.Fatalf("pending on shopify: %+v (%v), want %s", tasks, err, sh.JobID)
	}
}

// Redis out of reach is a failure worth retrying, and the shipment's turn
// is not used: whether its job is alive could not be asked.
func TestReconcileWithoutRedisIsTransient(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Reconcile.Age = time.Millisecond })
	// As the tracking callback saves it: with its sync job.
	sh := &store.Shipment{OrderID: 1001, TrackingNumber: "1Z999", Carrier: "UPS"}
	if err := e.store.SaveShipment(context.Background(), sh, func(sh *store.Shipment) ([]job.Envelope, error) {
		env, err := e.reg.Prepare(jobs.SyncTracking{ShipmentID: sh.ID, OrderID: sh.OrderID, TrackingNumber: sh.TrackingNumber})
		return []job.Envelope{env}, err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // older than reconcile.age
	e.redis.Stop()
	wantClass(t, e.run(jobs.ReconcileShipments{}), errand.Transient, "connection refused")
	got, err := e.store.GetShipment(context.Background(), sh.ID)
	if err != nil || got.Requeues != 0 || got.JobID != sh.JobID {
		t.Fatalf("shipment %+v (%v): a turn was used", got, err)
	}
}
