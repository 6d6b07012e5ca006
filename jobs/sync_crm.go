package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/queue"
)

// SyncCRM creates or updates the user's contact on the marketing platform
// (Tidio). Tidio never upserts, so the contact is looked up by Email first: a
// retry after a lost response updates instead of creating a duplicate.
type SyncCRM struct {
	UserID int64 `json:"user_id"`
	// Email is the address the contact is known under in the CRM: on a
	// profile change, the address before the change.
	Email string `json:"email"`
	// Changed holds the fields to send (first_name, last_name, email): every
	// field on registration, only the changed ones on a profile change.
	Changed map[string]string `json:"changed"`
	// Contact is the whole contact, used to create it when the CRM has none.
	Contact map[string]string `json:"contact,omitempty"`
}

// Kind implements queue.Args.
func (SyncCRM) Kind() string { return "user:sync_crm" }

// Defaults implements queue.Args.
func (SyncCRM) Defaults() queue.Defaults {
	return queue.Defaults{Queue: "crm", Backoff: []time.Duration{10 * time.Second, time.Minute}}
}

// Validate implements queue.Validator.
func (s SyncCRM) Validate() error {
	if s.Email == "" {
		return errors.New("email: must not be empty")
	}
	if len(s.Changed) == 0 {
		return errors.New("changed: must name at least one field")
	}
	return nil
}

type syncCRM struct{ Deps }

func (h *syncCRM) Work(ctx context.Context, s SyncCRM) error {
	return errand.Permanentf("user:sync_crm: not implemented yet")
}
