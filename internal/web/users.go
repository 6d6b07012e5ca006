package web

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/errandhq/errand/internal/job"
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
	} else if hiddenChar(r.Email) {
		f["email"] = mustBeVisible
	}
	name := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			f[field] = "must not be empty"
		case utf8.RuneCountInString(v) > 100:
			f[field] = "must be at most 100 characters"
		case hiddenChar(v):
			f[field] = mustBeVisible
		}
	}
	name("first_name", r.FirstName, true)
	name("last_name", r.LastName, true)
	name("sales_rep", r.SalesRep, false)
	switch {
	case utf8.RuneCountInString(r.Password) < 8:
		f["password"] = "must be at least 8 characters"
	case len(r.Password) > 72:
		// bcrypt reads only the first 72 bytes.
		f["password"] = "must be at most 72 bytes"
	}
	return f
}

const mustBeVisible = "must not contain control, line-break or invisible formatting characters"

// hiddenChar reports whether s holds a character that does not show as
// itself: control characters (CR/LF split a Slack message or a CRM field),
// line and paragraph separators, and format characters, among them the bidi
// overrides that make "Ada\u202Eexe.txt" read as "Adatxt.exe" and the tag
// characters that hide text. The zero-width joiner and non-joiner stay
// allowed: Persian and Indic names and emoji sequences need them.
func hiddenChar(s string) bool {
	for _, c := range s {
		switch {
		case c == '\u200C' || c == '\u200D':
		case unicode.In(c, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
			return true
		}
	}
	return false
}

func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// hashGate bounds the bcrypt work of registration, the one thing a public
// caller can make errand spend CPU on at will: at most cap(slots) hashes run at
// once, at most cap(queue) requests wait for a slot, each for at most wait, so
// neither the CPU nor the goroutines a flood holds grow without bound.
// Everything else (the job API, health checks) never takes a slot.
type hashGate struct {
	slots chan struct{}
	queue chan struct{}
	wait  time.Duration
}

// newHashGate sizes the gate to the CPUs errand may use: a flood of sign-ups
// keeps at most every core busy hashing, and the Go scheduler still gives the
// other requests their turn. The queue behind it (32 a core, about 2 s of
// hashing at bcrypt's default cost) absorbs a real burst of sign-ups, and the
// wait lets it drain even on a slow or busy machine: what bounds a flood is
// the queue, beyond which a caller is told at once to come back.
func newHashGate() *hashGate {
	n := runtime.GOMAXPROCS(0)
	return &hashGate{slots: make(chan struct{}, n), queue: make(chan struct{}, 32*n), wait: 30 * time.Second}
}

// acquire takes a slot and returns its release, or false when none came free
// in time (or too many already wait, or the caller left).
func (g *hashGate) acquire(ctx context.Context) (release func(), ok bool) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, true
	default:
	}
	select {
	case g.queue <- struct{}{}:
		defer func() { <-g.queue }()
	default:
		return nil, false
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

var emailTaken = &problem{Status: http.StatusConflict, Error: "email already registered", Fields: map[string]string{"email": "is already registered"}}

// handleRegister saves the user and, in the same transaction, the jobs
// user.registered queues ([events]); the relay moves them to Redis. The answer never waits on SMTP, the
// CRM, or even Redis.
func (s *Server) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _, p := decode[*registration](w, r)
		if p != nil {
			p.send(w)
			return
		}
		// A repeat is answered before any bcrypt work; the unique index still
		// decides between two racing sign-ups.
		taken, err := s.Store.EmailRegistered(r.Context(), in.Email)
		if err != nil {
			s.Log.Error("register: look up email", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		if taken {
			emailTaken.send(w)
			return
		}
		release, ok := s.hashGate.acquire(r.Context())
		if !ok {
			w.Header().Set("Retry-After", "2")
			(&problem{Status: http.StatusServiceUnavailable, Error: "too many sign-ups at once; try again in a few seconds"}).send(w)
			return
		}
		hash, err := s.hash(in.Password)
		release()
		if err != nil {
			s.Log.Error("register: hash password", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		u := &store.User{Email: in.Email, FirstName: in.FirstName, LastName: in.LastName, PasswordHash: hash, SalesRep: in.SalesRep}
		err = s.Store.CreateUser(r.Context(), u, func(u *store.User) ([]job.Envelope, error) {
			return s.Events.Raise(jobs.UserRegistered{User: *u})
		})
		switch {
		case errors.Is(err, store.ErrEmailTaken):
			emailTaken.send(w)
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

// profileChange is the body of PATCH /api/users/{id}: only the fields given
// change.
type profileChange struct {
	Email     *string `json:"email"`
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
	SalesRep  *string `json:"sales_rep"`
	Password  *string `json:"password"`
}

// Valid implements validator.
func (p *profileChange) Valid() map[string]string {
	f := map[string]string{}
	if p.Password != nil {
		f["password"] = "cannot be changed here"
	}
	if p.Email == nil && p.FirstName == nil && p.LastName == nil && p.SalesRep == nil {
		f["body"] = "give at least one of email, first_name, last_name, sales_rep"
	}
	full := registration{Email: "x@x.x", FirstName: "x", LastName: "x", Password: "xxxxxxxx"}
	if p.Email != nil {
		full.Email = *p.Email
	}
	if p.FirstName != nil {
		full.FirstName = *p.FirstName
	}
	if p.LastName != nil {
		full.LastName = *p.LastName
	}
	if p.SalesRep != nil {
		full.SalesRep = *p.SalesRep
	}
	for k, v := range full.Valid() {
		f[k] = v
	}
	return f
}

// handleProfileChange saves the change and raises user.updated in the same
// transaction (by default user:sync_crm, carrying only the fields that
// changed).
func (s *Server) handleProfileChange() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			(&problem{Status: http.StatusNotFound, Error: "no such user"}).send(w)
			return
		}
		in, _, p := decode[*profileChange](w, r)
		if p != nil {
			p.send(w)
			return
		}
		given := map[string]*string{"email": in.Email, "first_name": in.FirstName, "last_name": in.LastName, "sales_rep": in.SalesRep}
		queued := false
		u, err := s.Store.UpdateUser(r.Context(), id, trimmed(given), func(before, after *store.User) ([]job.Envelope, error) {
			out, err := s.Events.Raise(jobs.UserUpdated{Before: *before, After: *after})
			queued = len(out) > 0
			return out, err
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			(&problem{Status: http.StatusNotFound, Error: "no such user"}).send(w)
			return
		case errors.Is(err, store.ErrEmailTaken):
			(&problem{Status: http.StatusConflict, Error: "email already registered", Fields: map[string]string{"email": "is already registered"}}).send(w)
			return
		case err != nil:
			s.Log.Error("profile change: save user", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		if queued {
			s.Relay.Kick()
		}
		writeJSON(w, http.StatusOK, u)
	})
}

func trimmed(given map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range given {
		if v != nil {
			out[k] = strings.TrimSpace(*v)
		}
	}
	return out
}
