package jobs

import (
	"context"
	"errors"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/mail"
)

// WelcomeEmail greets a new customer: an HTML and text email over SMTP, five
// seconds after registration (think-queue's Queue::later(5, …)).
type WelcomeEmail struct {
	UserID    int64  `json:"user_id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// Kind implements job.Args.
func (WelcomeEmail) Kind() string { return "user:welcome_email" }

// Entity is the user the job is for, on its timeline.
func (p WelcomeEmail) Entity() string { return job.UserEntity(p.UserID) }

// Defaults implements job.Args.
func (WelcomeEmail) Defaults() job.Defaults {
	return job.Defaults{Queue: "emails", Delay: 5 * time.Second}
}

// Sources implements job.Sourced: a new user is greeted.
func (WelcomeEmail) Sources() []job.Source {
	return []job.Source{job.From(func(e UserRegistered) (WelcomeEmail, bool) {
		u := e.User
		return WelcomeEmail{UserID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}, true
	})}
}

// Validate implements job.Validator.
func (w WelcomeEmail) Validate() error {
	var errs []error
	if _, err := netmail.ParseAddress(w.Email); err != nil || !strings.Contains(w.Email, "@") {
		errs = append(errs, errors.New("email: must be a valid email address"))
	}
	if strings.TrimSpace(w.FirstName) == "" {
		errs = append(errs, errors.New("first_name: must not be empty"))
	}
	return errors.Join(errs...)
}

// welcomeEmail sends through the worker's mailer ([smtp], checked when the
// configuration loads).
type welcomeEmail struct {
	mailer *mail.Mailer
	shop   string // the shop's name in the email: smtp.from's display name
}

func newWelcomeEmail(d Deps) (*welcomeEmail, error) {
	return &welcomeEmail{mailer: d.Mailer, shop: shopName(d.Config.SMTP.From)}, nil
}

func (h *welcomeEmail) Work(ctx context.Context, w WelcomeEmail) error {
	msg, err := h.mailer.Render("welcome", map[string]any{
		"FirstName": w.FirstName,
		"LastName":  w.LastName,
		"Email":     w.Email,
		"Shop":      h.shop,
	})
	if err != nil {
		return err
	}
	msg.To = []string{w.Email}
	return h.mailer.Send(ctx, msg)
}

// shopName is the display name of smtp.from ("Acme Shop <hi@acme.test>").
func shopName(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil && a.Name != "" {
		return a.Name
	}
	return "our shop"
}
