package limit

import (
	"context"
	"fmt"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/rdb/sharedlimit"
)

// The Gate is an outbound.CostGate: Shopify's client keeps the shop's cost
// bucket through it.
var _ outbound.CostGate = (*Gate)(nil)

// WaitCost returns nil when service's cost bucket, shared by every worker,
// covers a call of kind op — what the last call of that kind requested, or
// the dearest call seen — and sets that cost aside until Spent. Else it
// returns an errand.ThrottledError with the wait: the job is tried again
// then, without using an attempt, before the service would say THROTTLED.
func (g *Gate) WaitCost(ctx context.Context, service, op string) (int64, error) {
	if g == nil {
		return 0, nil
	}
	wait, reservation, err := g.r.CostTake(ctx, service, op)
	if err != nil {
		return 0, err
	}
	if wait > 0 {
		return 0, errand.ThrottledError(fmt.Errorf("%w: %s's cost bucket cannot cover %s yet", ErrRefused, service, op), wait)
	}
	return reservation, nil
}

// Spent gives reservation back and records what service said of its bucket
// after the call (c nil: no answer).
func (g *Gate) Spent(ctx context.Context, service, op string, reservation int64, c *outbound.Cost) {
	if g == nil {
		return
	}
	var f *sharedlimit.CostFigures
	if c != nil {
		f = &sharedlimit.CostFigures{Requested: c.Requested, Maximum: c.Maximum, Available: c.Available, RestoreRate: c.RestoreRate}
	}
	// A record that cannot be made only leaves the bucket's reckoning as it
	// was; the service's own answer still classes the call.
	_, _ = g.r.CostSpent(ctx, service, op, reservation, f)
}
