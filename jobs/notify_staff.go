package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/slack"
	"github.com/errandhq/errand/internal/telegram"
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

// Kind implements job.Args.
func (NotifyStaff) Kind() string { return "user:notify_staff" }

// Entity is the user the job is for, on its timeline.
func (p NotifyStaff) Entity() string { return job.UserEntity(p.UserID) }

// Defaults implements job.Args.
func (NotifyStaff) Defaults() job.Defaults {
	return job.Defaults{Queue: "notifications"}
}

// Sources implements job.Sourced: the rep hears of a new user.
func (NotifyStaff) Sources() []job.Source {
	return []job.Source{job.From(func(e UserRegistered) (NotifyStaff, bool) {
		u := e.User
		return NotifyStaff{UserID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, SalesRep: u.SalesRep}, true
	})}
}

// Validate implements job.Validator.
func (n NotifyStaff) Validate() error {
	if n.Email == "" {
		return errors.New("email: must not be empty")
	}
	return nil
}

// notifyStaff holds the client of notify.kind's channel: slack or telegram,
// the other nil.
type notifyStaff struct {
	reps       map[string]config.Rep
	defaultRep string
	slack      *slack.Client
	telegram   *telegram.Client
}

// newNotifyStaff checks [notify] whole: the channel, its credentials, and
// every rep's address on it, so no job finds a rep it cannot reach.
func newNotifyStaff(d Deps) (*notifyStaff, error) {
	cfg := d.Config.Notify
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The clients wait for [limits.slack] / [limits.telegram] and hold the
	// channel for every worker when it throttles one.
	h := &notifyStaff{reps: cfg.Reps, defaultRep: cfg.DefaultRep}
	if cfg.Kind == "telegram" {
		h.telegram = telegram.New(cfg.BaseURL, cfg.TelegramBotToken, 0).WithGate(d.Gate)
	} else {
		h.slack = slack.New(cfg.BaseURL, 0).WithGate(d.Gate)
	}
	return h, nil
}

func (h *notifyStaff) Work(ctx context.Context, n NotifyStaff) error {
	repID := n.SalesRep
	if repID == "" {
		repID = h.defaultRep
	}
	if repID == "" {
		return errand.Permanentf("notify: the registration names no sales rep and notify.default_rep is empty")
	}
	rep, ok := h.reps[repID]
	if !ok {
		return errand.Permanentf("notify: unknown sales rep %q (not in [notify.reps])", repID)
	}
	if h.telegram != nil {
		_, err := h.telegram.SendMessage(ctx, rep.TelegramChatID, newCustomerText(rep.Name, n, func(s string) string { return s }))
		return err
	}
	return h.slack.Post(ctx, rep.SlackWebhookURL, newCustomerText(rep.Name, n, slack.Escape))
}

// newCustomerText is the message to the rep; escape makes the customer's own
// words (name, email) inert for the channel's markup.
func newCustomerText(repName string, n NotifyStaff, escape func(string) string) string {
	name := strings.TrimSpace(n.FirstName + " " + n.LastName)
	if name == "" {
		name = "(no name given)"
	}
	greeting := "New customer"
	if repName != "" {
		greeting = "New customer for " + repName
	}
	text := fmt.Sprintf("%s: %s (%s) just registered", greeting, escape(name), escape(n.Email))
	if n.UserID > 0 {
		text += fmt.Sprintf(", user #%d", n.UserID)
	}
	return text + "."
}
