package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/queue"
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

// Kind implements queue.Args.
func (SyncTracking) Kind() string { return "order:sync_tracking" }

// Defaults implements queue.Args.
func (SyncTracking) Defaults() queue.Defaults {
	return queue.Defaults{Queue: "shopify", Backoff: []time.Duration{10 * time.Second, time.Minute}}
}

// Validate implements queue.Validator.
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

type syncTracking struct{ Deps }

func (h *syncTracking) Work(ctx context.Context, s SyncTracking) error {
	return errand.Permanentf("order:sync_tracking: not implemented yet")
}
