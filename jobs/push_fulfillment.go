package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/queue"
)

// PushFulfillment pushes a paid Shopify order to the fulfillment platform
// (a Mabang-style gateway, signed request). The order itself — the webhook's
// JSON — is read from the database by its id.
type PushFulfillment struct {
	OrderID int64 `json:"order_id"`
}

// Kind implements queue.Args.
func (PushFulfillment) Kind() string { return "order:push_fulfillment" }

// Defaults implements queue.Args.
func (PushFulfillment) Defaults() queue.Defaults {
	return queue.Defaults{Queue: "fulfillment", Backoff: []time.Duration{10 * time.Second, time.Minute}}
}

// Validate implements queue.Validator.
func (p PushFulfillment) Validate() error {
	if p.OrderID <= 0 {
		return errors.New("order_id: must be a Shopify order id")
	}
	return nil
}

type pushFulfillment struct{ Deps }

func (h *pushFulfillment) Work(ctx context.Context, p PushFulfillment) error {
	return errand.Permanentf("order:push_fulfillment: not implemented yet")
}
