package outbound

import "context"

// Gate is errand's [limits] on the services it calls (internal/limit's Gate,
// shared by every worker through Redis): asked before each call, and told
// each call's outcome, so that a throttled answer holds the service for every
// worker. Each service's client asks it in the one place it makes requests.
type Gate interface {
	// Wait returns nil when a call of service may go now, else a throttled
	// error saying how long to wait: the job is tried again then, without
	// using an attempt.
	Wait(ctx context.Context, service string) error
	// After is told the call's error (nil on success) and returns it; a
	// throttled one holds the service for the wait it carries.
	After(ctx context.Context, service string, err error) error
}

// Call makes one call of service through gate: asked first, told after. A
// nil gate lets every call go. A refusal comes back before anything is sent,
// so a job refused half-way through its calls is simply run again later:
// errand's jobs are idempotent.
func Call(ctx context.Context, gate Gate, service string, call func() error) error {
	if gate == nil {
		return call()
	}
	if err := gate.Wait(ctx, service); err != nil {
		return err
	}
	return gate.After(ctx, service, call())
}

// Cost is what a service with a cost-based limit (Shopify's GraphQL Admin
// API) says of its bucket after a call.
type Cost struct {
	// Requested is the call's requested cost, which the service must have
	// available before it runs the call: what the next call of its kind is
	// expected to need.
	Requested   float64
	Maximum     float64 // the bucket's size
	Available   float64 // what is in it after the call
	RestoreRate float64 // what comes back each second
}

// CostGate is a Gate that also keeps a service's cost bucket, shared by every
// worker, so that workers slow down before the service says it is throttling.
type CostGate interface {
	Gate
	// WaitCost returns nil when the bucket covers a call of kind op (what the
	// last one cost) and sets that much aside until Spent, else a throttled
	// error saying how long to wait. reservation is passed to Spent.
	WaitCost(ctx context.Context, service, op string) (reservation int64, err error)
	// Spent gives back the reservation and records c, what the service said
	// of its bucket (nil when the call got no answer).
	Spent(ctx context.Context, service, op string, reservation int64, c *Cost)
}
