package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/queue"
)

// NotifyStaff tells the new customer's sales rep (the registration's
// sales_rep, else notify.default_rep) over Slack or Telegram.
type NotifyStaff struct {
	UserID    int64  `json:"user_id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	SalesRep  string `json:"sales_rep,omitempty"`
}

// Kind implements queue.Args.
func (NotifyStaff) Kind() string { return "user:notify_staff" }

// Defaults implements queue.Args.
func (NotifyStaff) Defaults() queue.Defaults {
	return queue.Defaults{Queue: "notifications", Backoff: []time.Duration{10 * time.Second, time.Minute}}
}

// Validate implements queue.Validator.
func (n NotifyStaff) Validate() error {
	if n.Email == "" {
		return errors.New("email: must not be empty")
	}
	return nil
}

type notifyStaff struct{ Deps }

func (h *notifyStaff) Work(ctx context.Context, n NotifyStaff) error {
	return errand.Permanentf("user:notify_staff: not implemented yet")
}
