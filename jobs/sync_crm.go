package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/internal/tidio"
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

// Kind implements job.Args.
func (SyncCRM) Kind() string { return "user:sync_crm" }

// Entity is the user the job is for, on its timeline.
func (p SyncCRM) Entity() string { return job.UserEntity(p.UserID) }

// Defaults implements job.Args.
func (SyncCRM) Defaults() job.Defaults {
	// One user's changes reach the CRM one at a time, in the order made: a
	// later change is never overwritten by an earlier one.
	return job.Defaults{Queue: "crm", OrderBy: "user_id"}
}

// Sources implements job.Sourced: a new user's whole contact, or on a
// profile change only the contact's fields that changed (the CRM gets what
// changed, not the whole record); no job when none did.
func (SyncCRM) Sources() []job.Source {
	return []job.Source{
		job.From(func(e UserRegistered) (SyncCRM, bool) {
			contact := contactOf(e.User)
			return SyncCRM{UserID: e.User.ID, Email: e.User.Email, Changed: contact, Contact: maps.Clone(contact)}, true
		}),
		job.From(func(e UserUpdated) (SyncCRM, bool) {
			before, after := contactOf(e.Before), contactOf(e.After)
			changed := map[string]string{}
			for k, v := range after {
				if before[k] != v {
					changed[k] = v
				}
			}
			// Known in the CRM under the address before the change.
			return SyncCRM{UserID: e.After.ID, Email: e.Before.Email, Changed: changed, Contact: after}, len(changed) > 0
		}),
	}
}

// contactOf is the part of a user the CRM holds.
func contactOf(u store.User) map[string]string {
	return map[string]string{"email": u.Email, "first_name": u.FirstName, "last_name": u.LastName}
}

// Validate implements job.Validator.
func (s SyncCRM) Validate() error {
	if s.Email == "" {
		return errors.New("email: must not be empty")
	}
	if len(s.Changed) == 0 {
		return errors.New("changed: must name at least one field")
	}
	// The maps are the one place a payload takes any key: only the contact's
	// fields may travel, so nothing else reaches Redis or the CRM.
	for _, f := range []struct {
		name string
		m    map[string]string
	}{{"changed", s.Changed}, {"contact", s.Contact}} {
		for _, k := range slices.Sorted(maps.Keys(f.m)) {
			if !contactFields[k] {
				return fmt.Errorf("%s: unknown field %q (allowed: email, first_name, last_name)", f.name, k)
			}
		}
	}
	return nil
}

// contactFields are the contact fields errand keeps in the CRM.
var contactFields = map[string]bool{"email": true, "first_name": true, "last_name": true}

// syncCRM keeps contacts on the Tidio project of [crm].
type syncCRM struct{ crm *tidio.Client }

func newSyncCRM(d Deps) (*syncCRM, error) {
	c, err := tidio.New(d.Config.CRM, 0)
	if err != nil {
		return nil, err
	}
	// Each of the job's calls (look-up, create, update) waits for
	// [limits.tidio] and a hold after Tidio throttled any worker.
	return &syncCRM{crm: c.WithGate(d.Gate)}, nil
}

func (h *syncCRM) Work(ctx context.Context, s SyncCRM) error {
	contact, err := findContact(ctx, h.crm, s)
	if err != nil {
		return err
	}
	if contact != nil {
		return h.crm.Update(ctx, contact.ID, s.Changed)
	}
	_, err = h.crm.Create(ctx, s.newContact())
	if outbound.IsStatus(err, http.StatusUnprocessableEntity) {
		// Refused as a duplicate: another job created the contact since the
		// look-up (a registration and a profile change racing). Update it.
		contact, ferr := findContact(ctx, h.crm, s)
		if ferr != nil {
			return ferr
		}
		if contact != nil {
			return h.crm.Update(ctx, contact.ID, s.Changed)
		}
	}
	return err
}

// findContact looks the contact up under its known email, then under the new
// email when this change sets one: an earlier attempt may have changed the
// email already and lost the answer.
func findContact(ctx context.Context, c *tidio.Client, s SyncCRM) (*tidio.Contact, error) {
	contact, err := c.FindByEmail(ctx, s.Email)
	if err != nil || contact != nil {
		return contact, err
	}
	if email := s.Changed["email"]; email != "" && !strings.EqualFold(email, s.Email) {
		return c.FindByEmail(ctx, email)
	}
	return nil, nil
}

// newContact is what a new contact is created with: the whole contact when
// the payload has it, else the changed fields, always with an email so the
// next sync finds it. Empty fields are left out: a new contact has nothing to
// clear.
func (s SyncCRM) newContact() map[string]string {
	src := s.Contact
	if len(src) == 0 {
		src = s.Changed
	}
	fields := make(map[string]string, len(src)+1)
	for k, v := range src {
		if v != "" {
			fields[k] = v
		}
	}
	if fields["email"] == "" {
		fields["email"] = s.Email
		if e := s.Changed["email"]; e != "" {
			fields["email"] = e
		}
	}
	return fields
}
