package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// A shipment whose sync job was lost is queued again by the reconciler —
// exactly once, although two workers (two schedulers) run the check.
func TestReconcileRequeuesStuckShipmentOnceWithTwoSchedulers(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: `
[reconcile]
age = "1s"
max_requeues = 3
[[schedule]]
type = "ops:reconcile_shipments"
every = "1s"
`})
	// A second worker: a second scheduler and a second reconciler.
	second := &syncBuffer{}
	s.startWorker(second)

	// Hold the shopify queue so the re-queued job stays alive (pending): a
	// second re-queue would then be a duplicate.
	ins := s.inspector()
	if err := ins.PauseQueue("shopify"); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	st := s.db()
	sh := &store.Shipment{OrderID: 820982911946154508, TrackingNumber: "1Z999AA10123456784", Carrier: "UPS"}
	// Saved with no job at all: as if the job was lost between the database
	// and Redis, or failed for good long ago.
	if err := st.SaveShipment(context.Background(), sh, func(*store.Shipment) ([]job.Envelope, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if err := ins.PauseQueue("shopify"); err != nil && !strings.Contains(err.Error(), "already paused") {
		t.Logf("pause: %v", err)
	}
	s.waitFor(20*time.Second, "the shipment to be queued again", func() bool {
		got, err := st.GetShipment(context.Background(), sh.ID)
		return err == nil && got.Requeues >= 1
	})
	time.Sleep(4 * time.Second) // several more reconcile turns on both workers
	got, err := st.GetShipment(context.Background(), sh.ID)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := ins.ListPendingTasks("shopify")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	t.Logf("after 4 s of reconciling on two workers: requeues=%d, job %s, pending shopify jobs %v", got.Requeues, got.JobID, ids)
	if got.Requeues != 1 || len(tasks) != 1 || tasks[0].ID != got.JobID || tasks[0].Type != "order:sync_tracking" {
		t.Fatalf("want exactly one re-queued sync job; requeues=%d jobs=%v", got.Requeues, ids)
	}
	if n := len(s.worker.lines("stuck shipment queued again")) + len(second.lines("stuck shipment queued again")); n != 1 {
		t.Fatalf("%d re-queue log lines, want 1", n)
	}
}
