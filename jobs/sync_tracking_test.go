package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// saveShipment saves a pending shipment as the tracking callback does,
// without its job, and returns the job's payload.
func (e *env) saveShipment(orderID int64, tracking string) jobs.SyncTracking {
	e.t.Helper()
	sh := &store.Shipment{OrderID: orderID, TrackingNumber: tracking, Carrier: "UPS",
		TrackingURL: "https://www.ups.com/track?tracknum=" + tracking, ShippedAt: time.Now().UTC().Format(time.RFC3339)}
	if err := e.store.SaveShipment(context.Background(), sh, func(*store.Shipment) ([]job.Envelope, error) { return nil, nil }); err != nil {
		e.t.Fatal(err)
	}
	return jobs.SyncTracking{ShipmentID: sh.ID, OrderID: orderID, TrackingNumber: tracking, Carrier: sh.Carrier, TrackingURL: sh.TrackingURL}
}

func (e *env) syncState(id int64) string {
	e.t.Helper()
	sh, err := e.store.GetShipment(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return sh.SyncState
}

// The tracking lands on the Shopify order as one fulfillment and the
// shipment is marked synced; running it again adds nothing.
func TestSyncTrackingFulfillsTheOrderOnce(t *testing.T) {
	e := newEnv(t)
	const order = 820982911946154508
	e.fakes.Shopify.AddOrder(order, 2)
	s := e.saveShipment(order, "1Z999")
	for range 2 {
		if err := e.run(s); err != nil {
			t.Fatal(err)
		}
	}
	f := e.fakes.Shopify.Fulfillments(order)
	if len(f) != 1 || len(f[0].TrackingInfo) != 1 || f[0].TrackingInfo[0].Number != "1Z999" || f[0].TrackingInfo[0].Company != "UPS" {
		t.Fatalf("fulfillments: %+v", f)
	}
	if st := e.syncState(s.ShipmentID); st != "synced" {
		t.Fatalf("shipment %s", st)
	}
}

// Shopify's THROTTLED is waited out as its cost figures say, without using
// an attempt; a payload that names another order's shipment is refused for
// good, so no customer is told another's parcel number.
func TestSyncTrackingFailureClasses(t *testing.T) {
	e := newEnv(t)
	e.fakes.Shopify.AddOrder(1001, 1)
	s := e.saveShipment(1001, "1Z999")
	e.fakes.AddFault(sandbox.Fault{Service: shopifytest.Service, Throttle: true, Count: 1})
	if wait := wantClass(t, e.run(s), errand.Throttled); wait < time.Second {
		t.Errorf("waits %s; the bucket refills the missing 100 points in 1s", wait)
	}
	other := s
	other.OrderID = 1002
	wantClass(t, e.run(other), errand.Permanent, "not order 1002's")
	if f := e.fakes.Shopify.Fulfillments(1001); len(f) != 0 {
		t.Fatalf("fulfillments: %+v", f)
	}
	if st := e.syncState(s.ShipmentID); st != "pending" {
		t.Fatalf("shipment %s", st)
	}
}
