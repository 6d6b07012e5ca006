package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/store"
)

// SyncTracking adds a shipment's tracking number to its Shopify order
// (GraphQL Admin API) and marks the shipment synced.
type SyncTracking struct {
	ShipmentID     int64  `json:"shipment_id"`
	OrderID        int64  `json:"order_id"`
	TrackingNumber string `json:"tracking_number"`
	Carrier        string `json:"carrier"`
	TrackingURL    string `json:"tracking_url"`
}

// Kind implements job.Args.
func (SyncTracking) Kind() string { return "order:sync_tracking" }

// Entity is the order the job is for, on its timeline.
func (p SyncTracking) Entity() string { return job.OrderEntity(p.OrderID) }

// Defaults implements job.Args.
func (SyncTracking) Defaults() job.Defaults {
	return job.Defaults{Queue: "shopify"}
}

// Sources implements job.Sourced: a shipment's tracking goes to its order.
func (SyncTracking) Sources() []job.Source {
	return []job.Source{job.From(func(e ShipmentShipped) (SyncTracking, bool) {
		sh := e.Shipment
		return SyncTracking{ShipmentID: sh.ID, OrderID: sh.OrderID, TrackingNumber: sh.TrackingNumber, Carrier: sh.Carrier, TrackingURL: sh.TrackingURL}, true
	})}
}

// Validate implements job.Validator.
func (s SyncTracking) Validate() error {
	var errs []error
	if s.ShipmentID <= 0 {
		errs = append(errs, errors.New("shipment_id: must be set"))
	}
	if s.OrderID <= 0 {
		errs = append(errs, errors.New("order_id: must be a Shopify order id"))
	}
	if s.TrackingNumber == "" {
		errs = append(errs, errors.New("tracking_number: must not be empty"))
	}
	return errors.Join(errs...)
}

// syncTracking reads shipments from the database and puts their tracking on
// the shop of [shopify].
type syncTracking struct {
	store store.Store
	shop  *shopify.Client
}

func newSyncTracking(d Deps) (*syncTracking, error) {
	c, err := shopify.New(d.Config.Shopify, 0)
	if err != nil {
		return nil, err
	}
	// Each GraphQL call waits for [limits.shopify], a hold after a throttled
	// answer and the shop's cost bucket, shared by every worker.
	return &syncTracking{store: d.Store, shop: c.WithGate(d.Gate)}, nil
}

// Work puts the tracking on the Shopify order, then marks the shipment
// synced. Shopify is asked first whether a fulfillment already carries the
// number, so a retry after a lost answer, or after the shipment could not be
// marked, adds nothing twice.
func (h *syncTracking) Work(ctx context.Context, s SyncTracking) error {
	sh, err := h.store.GetShipment(ctx, s.ShipmentID)
	if errors.Is(err, store.ErrNotFound) {
		return errand.Permanentf("order:sync_tracking: shipment %d is not in the database", s.ShipmentID)
	}
	if err != nil {
		return fmt.Errorf("order:sync_tracking: %w", err)
	}
	if sh.OrderID != s.OrderID || sh.TrackingNumber != s.TrackingNumber {
		// Syncing anyway would tell one customer another's parcel number.
		return errand.Permanentf("order:sync_tracking: shipment %d is order %d's %q, not order %d's %q",
			sh.ID, sh.OrderID, sh.TrackingNumber, s.OrderID, s.TrackingNumber)
	}
	if sh.SyncState == "synced" {
		job.Logger(ctx).Info("shipment already synced to Shopify", "shipment_id", sh.ID, "order_id", sh.OrderID)
		return nil
	}
	outcome, f, err := h.shop.SyncTracking(ctx, s.OrderID, shopify.Tracking{Company: s.Carrier, Number: s.TrackingNumber, URL: s.TrackingURL})
	if err != nil {
		return err
	}
	if err := h.store.MarkShipmentSynced(ctx, s.ShipmentID); err != nil {
		return fmt.Errorf("order:sync_tracking: tracking is on Shopify (%s) but the shipment was not marked: %w", outcome, err)
	}
	job.Logger(ctx).Info("tracking synced to Shopify", "shipment_id", s.ShipmentID, "order_id", s.OrderID, "outcome", string(outcome), "fulfillment", f.ID)
	return nil
}
