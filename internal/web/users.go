package web

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/queue"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
	"golang.org/x/crypto/bcrypt"
)

// registration is the body of POST /api/users.
type registration struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Password  string `json:"password"`
	SalesRep  string `json:"sales_rep"`
}

// Valid implements validator.
func (r *registration) Valid() map[string]string {
	f := map[string]string{}
	r.Email = strings.TrimSpace(r.Email)
	r.FirstName = strings.TrimSpace(r.FirstName)
	r.LastName = strings.TrimSpace(r.LastName)
	r.SalesRep = strings.TrimSpace(r.SalesRep)
	if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email || !strings.Contains(r.Email, "@") || len(r.Email) > 254 {
		f["email"] = "must be a valid email address"
	}
	if r.FirstName == "" {
		f["first_name"] = "must not be empty"
	} else if utf8.RuneCountInString(r.FirstName) > 100 {
		f["first_name"] = "must be at most 100 characters"
	}
	if r.LastName == "" {
		f["last_name"] = "must not be empty"
	} else if utf8.RuneCountInString(r.LastName) > 100 {
		f["last_name"] = "must be at most 100 characters"
	}
	switch {
	case utf8.RuneCountInString(r.Password) < 8:
		f["password"] = "must be at least 8 characters"
	case len(r.Password) > 72:
		// bcrypt reads only the first 72 bytes.
		f["password"] = "must be at most 72 bytes"
	}
	if len(r.SalesRep) > 100 {
		f["sales_rep"] = "must be at most 100 characters"
	}
	return f
}

func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// handleRegister saves the user and, in the same transaction, the side effects
// as jobs; the relay moves them to Redis. The answer never waits on SMTP, the
// CRM, or even Redis.
func (s *Server) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _, p := decode[*registration](w, r)
		if p != nil {
			p.send(w)
			return
		}
		hash, err := s.hash(in.Password)
		if err != nil {
			s.Log.Error("register: hash password", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		u := &store.User{Email: in.Email, FirstName: in.FirstName, LastName: in.LastName, PasswordHash: hash, SalesRep: in.SalesRep}
		err = s.Store.CreateUser(r.Context(), u, func(u *store.User) ([]queue.Envelope, error) {
			welcome, err := s.Registry.Prepare(jobs.WelcomeEmail{UserID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName})
			if err != nil {
				return nil, err
			}
			return []queue.Envelope{welcome}, nil
		})
		switch {
		case errors.Is(err, store.ErrEmailTaken):
			(&problem{Status: http.StatusConflict, Error: "email already registered", Fields: map[string]string{"email": "is already registered"}}).send(w)
			return
		case err != nil:
			s.Log.Error("register: save user", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		s.Relay.Kick()
		s.Log.Info("user registered", "user_id", u.ID)
		writeJSON(w, http.StatusCreated, u)
	})
}
