package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// PushFulfillment pushes a paid Shopify order to the fulfillment platform
// (a Mabang-style gateway, signed request). The order itself — the webhook's
// JSON — is read from the database by its id.
type PushFulfillment struct {
	OrderID int64 `json:"order_id"`
}

// Kind implements job.Args.
func (PushFulfillment) Kind() string { return "order:push_fulfillment" }

// Entity is the order the job is for, on its timeline.
func (p PushFulfillment) Entity() string { return job.OrderEntity(p.OrderID) }

// Defaults implements job.Args.
func (PushFulfillment) Defaults() job.Defaults {
	return job.Defaults{Queue: "fulfillment"}
}

// Sources implements job.Sourced: a paid order is pushed.
func (PushFulfillment) Sources() []job.Source {
	return []job.Source{job.From(func(e OrderPaid) (PushFulfillment, bool) {
		return PushFulfillment{OrderID: e.Order.ID}, true
	})}
}

// Validate implements job.Validator.
func (p PushFulfillment) Validate() error {
	if p.OrderID <= 0 {
		return errors.New("order_id: must be a Shopify order id")
	}
	return nil
}

// pushFulfillment reads orders from the database and pushes them to the
// gateway of [fulfillment].
type pushFulfillment struct {
	store   store.Store
	gateway *fulfillment.Client
}

func newPushFulfillment(d Deps) (*pushFulfillment, error) {
	c, err := fulfillment.New(d.Config.Fulfill, 0)
	if err != nil {
		return nil, err
	}
	return &pushFulfillment{store: d.Store, gateway: c.WithGate(d.Gate)}, nil
}

// Work pushes the order once: the gateway recognises a platformOrderId it
// already has, so a retry after a lost answer does not ship twice.
func (h *pushFulfillment) Work(ctx context.Context, p PushFulfillment) error {
	o, err := h.store.GetOrder(ctx, p.OrderID)
	if errors.Is(err, store.ErrNotFound) {
		return errand.Permanentf("order:push_fulfillment: order %d is not in the database", p.OrderID)
	}
	if err != nil {
		return fmt.Errorf("order:push_fulfillment: %w", err)
	}
	push, err := fulfillment.OrderFromShopify(o.ID, []byte(o.Payload))
	if errors.Is(err, fulfillment.ErrNothingToShip) {
		job.Logger(ctx).Info("order not pushed to the fulfillment platform: nothing in it needs shipping", "order_id", o.ID)
		return nil
	}
	if err != nil {
		return errand.PermanentError(err)
	}
	res, err := h.gateway.CreateOrder(ctx, push)
	if err != nil {
		return err
	}
	if res.AlreadyCreated {
		job.Logger(ctx).Info("order was already at the fulfillment platform", "order_id", o.ID)
	} else {
		job.Logger(ctx).Info("order pushed to the fulfillment platform", "order_id", o.ID, "items", len(push.Items))
	}
	return nil
}
