package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/errandhq/errand/internal/rdb"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// internalTypes cannot be queued through the API: errand queues them itself.
var internalTypes = map[string]bool{jobs.EscalateType: true, jobs.CallbackType: true, "ops:reconcile_shipments": true}

// reservedQueue carries the developers' escalation emails (see
// jobs.Digest): an API client filling it would delay them.
const reservedQueue = "critical"

// maxAPIDelay bounds how far ahead a job may be scheduled.
const maxAPIDelay = 30 * 24 * time.Hour

type tokenKey struct{}

// requireToken lets a request through with a valid Authorization: Bearer
// token from api.tokens. With no tokens configured the API is closed.
//
// The value after "Bearer " is compared exactly as sent: trimming it would
// let a padded or look-alike value (a no-break space, say) stand for a
// token. Hashing both sides first gives equal lengths, so the comparison
// takes the same time whatever the caller sends.
func (s *Server) requireToken(next http.Handler) http.Handler {
	var hashes [][32]byte
	for _, t := range s.Config.API.Tokens {
		if t != "" { // config refuses empty tokens; this keeps "" from ever matching regardless
			hashes = append(hashes, sha256.Sum256([]byte(t)))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(tok))
		match := 0
		for _, h := range hashes {
			match |= subtle.ConstantTimeCompare(got[:], h[:])
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="errand"`)
			(&problem{Status: http.StatusUnauthorized, Error: "missing or invalid bearer token"}).send(w)
			return
		}
		// Idempotency keys and job statuses are kept per token: two clients
		// never share one.
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tokenHash(got))))
	})
}

// bearerToken returns the token of an Authorization header "Bearer <token>"
// (the scheme in any case, RFC 6750), untrimmed; ok is false for another
// scheme or an empty token.
func bearerToken(auth string) (tok string, ok bool) {
	scheme, tok, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// tokenHash names a token in the database (idempotency keys, job owners)
// without storing the token.
func tokenHash(sum [32]byte) string { return hex.EncodeToString(sum[:8]) }

// jobRequest is the body of POST /api/jobs.
type jobRequest struct {
	Type          string          `json:"type"`
	Payload       json.RawMessage `json:"payload"`
	Delay         json.RawMessage `json:"delay"`
	Queue         string          `json:"queue"`
	CallbackURL   string          `json:"callback_url"`
	CallbackToken string          `json:"callback_token"`

	delay time.Duration
	reg   *job.Registry
	cfg   *config.Config
}

// Valid implements validator.
func (j *jobRequest) Valid() map[string]string {
	f := map[string]string{}
	def, err := j.reg.Lookup(j.Type)
	switch {
	case j.Type == "":
		f["type"] = "must not be empty"
	case err != nil || internalTypes[j.Type]:
		f["type"] = "unknown job type; known: " + strings.Join(publicTypes(j.reg), ", ")
	default:
		if len(bytes.TrimSpace(j.Payload)) == 0 {
			j.Payload = json.RawMessage("{}")
		}
		if err := def.Check(j.Payload); err != nil {
			f["payload"] = strings.TrimPrefix(err.Error(), job.ErrInvalidPayload.Error()+": ")
		}
	}
	if d := bytes.TrimSpace(j.Delay); len(d) > 0 && string(d) != "null" {
		var secs float64
		var text string
		switch {
		case json.Unmarshal(d, &secs) == nil:
			j.delay = time.Duration(secs * float64(time.Second))
		case json.Unmarshal(d, &text) == nil:
			v, err := time.ParseDuration(text)
			if err != nil {
				f["delay"] = `must be a duration like "5s" or a number of seconds`
			}
			j.delay = v
		default:
			f["delay"] = `must be a duration like "5s" or a number of seconds`
		}
		if j.delay < 0 || j.delay > maxAPIDelay {
			f["delay"] = "must be between 0 and 30 days"
		}
	}
	if j.Queue != "" {
		if _, ok := j.reg.Queues()[j.Queue]; !ok {
			f["queue"] = "is not a configured queue"
		}
	}
	// A type whose default queue is the reserved one must be sent elsewhere.
	if q := j.Queue; q == reservedQueue || (q == "" && err == nil && def.Queue == reservedQueue) {
		f["queue"] = "is reserved for errand's escalations; name another queue"
	}
	if j.CallbackURL != "" {
		// The URL is checked as given; names are resolved only when the
		// callback connects, where the guarded client checks the address.
		if j.cfg.API.CallbackSecret == "" {
			f["callback_url"] = "callbacks need api.callback_secret set on the server"
		} else if err := outbound.CheckCallbackURL(j.CallbackURL, j.cfg.API.AllowPrivateCallbacks); err != nil {
			f["callback_url"] = err.Error()
		}
		if len(j.CallbackToken) > 500 {
			f["callback_token"] = "must be at most 500 characters"
		}
	} else if j.CallbackToken != "" {
		f["callback_token"] = "needs callback_url"
	}
	return f
}

func publicTypes(reg *job.Registry) []string {
	var out []string
	for _, t := range reg.Types() {
		if !internalTypes[t] {
			out = append(out, t)
		}
	}
	return out
}

type jobAccepted struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Queue     string `json:"queue"`
	State     string `json:"state"`
	StatusURL string `json:"status_url"`
}

// handleEnqueue is POST /api/jobs: queue a job from any language. The job is
// saved in the database (outbox) before the 202, so it is not lost if Redis is
// down; with Idempotency-Key a retried request gets the first answer.
func (s *Server) handleEnqueue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, p := readBody(w, r)
		if p != nil {
			p.send(w)
			return
		}
		tokenHash, _ := r.Context().Value(tokenKey{}).(string)
		key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
		sum := sha256.Sum256(body)
		bodyHash := hex.EncodeToString(sum[:])
		if len(key) > 255 {
			(&problem{Status: http.StatusBadRequest, Error: "Idempotency-Key must be at most 255 characters"}).send(w)
			return
		}
		if key != "" {
			if s.replayIdempotent(w, r, tokenHash, key, bodyHash) {
				return
			}
		}
		var in jobRequest
		if err := json.Unmarshal(body, &in); err != nil {
			(&problem{Status: http.StatusBadRequest, Error: "malformed JSON: " + err.Error()}).send(w)
			return
		}
		in.reg = s.Registry
		in.cfg = s.Config
		unknown := unknownFields(body, &in)
		if f := in.Valid(); len(f)+len(unknown) > 0 {
			f = maps.Collect(maps.All(f))
			maps.Copy(f, unknown)
			(&problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: f}).send(w)
			return
		}
		opts := []job.Option{}
		if len(bytes.TrimSpace(in.Delay)) > 0 && string(bytes.TrimSpace(in.Delay)) != "null" {
			opts = append(opts, job.Delay(in.delay))
		}
		if in.Queue != "" {
			opts = append(opts, job.OnQueue(in.Queue))
		}
		if in.CallbackURL != "" {
			opts = append(opts, job.WithCallback())
		}
		e, err := s.Registry.PrepareRaw(in.Type, in.Payload, opts...)
		if err != nil {
			(&problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: map[string]string{"payload": err.Error()}}).send(w)
			return
		}
		state := "pending"
		if e.DueAt.After(time.Now()) {
			state = "scheduled"
		}
		answer := jobAccepted{ID: e.ID, Type: e.Type, Queue: e.Queue, State: state,
			StatusURL: strings.TrimRight(s.Config.HTTP.PublicURL, "/") + "/api/jobs/" + e.ID}
		resp, _ := json.Marshal(answer)
		err = s.Store.SaveAPIJob(r.Context(), store.APIJob{
			Envelope: e, CallbackURL: in.CallbackURL, CallbackToken: in.CallbackToken,
			TokenHash: tokenHash, Key: key, BodyHash: bodyHash, Status: http.StatusAccepted, Response: string(resp),
		})
		if errors.Is(err, store.ErrDuplicate) && s.replayIdempotent(w, r, tokenHash, key, bodyHash) {
			return // a concurrent request with the same key won
		}
		if err != nil {
			s.Log.Error("api: save job", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		s.Relay.Kick()
		w.Header().Set("Location", answer.StatusURL)
		writeJSON(w, http.StatusAccepted, answer)
	})
}

// replayIdempotent answers from the kept answer for key, if any: the same
// answer for the same body, 409 for another body. It reports whether it
// answered.
func (s *Server) replayIdempotent(w http.ResponseWriter, r *http.Request, tokenHash, key, bodyHash string) bool {
	kept, err := s.Store.LookupIdempotent(r.Context(), tokenHash, key)
	if err != nil {
		s.Log.Error("api: idempotency lookup", "error", err.Error())
		(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
		return true
	}
	if kept == nil {
		return false
	}
	if kept.BodyHash != bodyHash {
		(&problem{Status: http.StatusConflict, Error: "Idempotency-Key was already used with a different request body"}).send(w)
		return true
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(kept.Status)
	_, _ = w.Write([]byte(kept.Response + "\n"))
	return true
}

// jobStatus is the answer of GET /api/jobs/{id}.
type jobStatus struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	Queue       string     `json:"queue"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	MaxAttempts int        `json:"max_attempts"`
	LastError   string     `json:"last_error"`
	NextRunAt   *time.Time `json:"next_run_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

// handleJobStatus is GET /api/jobs/{id}. A token sees only the jobs it
// queued: another client's job, or one errand queued itself (a welcome
// email, a callback), answers as unknown, so ids cannot be probed.
func (s *Server) handleJobStatus() http.Handler {
	ins := rdb.NewInspector(s.Redis, s.maxAttempts)
	notFound := &problem{Status: http.StatusNotFound, Error: "no job with that id"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		caller, _ := r.Context().Value(tokenKey{}).(string)
		owner, err := s.Store.JobOwner(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notFound.send(w)
			return
		case err != nil:
			s.Log.Error("api: job owner", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		case caller == "" || owner != caller:
			notFound.send(w)
			return
		}
		if e, err := s.Store.OutboxJob(r.Context(), id); err == nil {
			// Accepted, not yet in Redis (the relay moves it shortly).
			st := jobStatus{ID: e.ID, Type: e.Type, Queue: e.Queue, State: rdb.StatePending, NextRunAt: &e.DueAt}
			if e.DueAt.After(time.Now()) {
				st.State = rdb.StateScheduled
			}
			st.MaxAttempts = s.maxAttempts(e.Type)
			writeJSON(w, http.StatusOK, st)
			return
		}
		j, err := ins.Job(r.Context(), id, slices.Sorted(maps.Keys(s.Registry.Queues()))...)
		if errors.Is(err, rdb.ErrNotFound) {
			// A job Redis lost (FLUSHALL) that failed for good is still on
			// the database's failed list.
			if f, ferr := s.Store.FailedJob(r.Context(), id); ferr == nil {
				writeJSON(w, http.StatusOK, jobStatus{ID: f.ID, Type: f.Type, Queue: f.Queue, State: rdb.StateFailed,
					Attempts: f.Attempts, MaxAttempts: f.MaxAttempts, LastError: f.Error})
				return
			}
		}
		switch {
		case errors.Is(err, rdb.ErrNotFound):
			notFound.send(w)
		case err != nil:
			s.Log.Error("api: job status", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
		default:
			writeJSON(w, http.StatusOK, statusOf(j))
		}
	})
}

func (s *Server) maxAttempts(typ string) int {
	if def, err := s.Registry.Lookup(typ); err == nil && !def.Unbounded {
		return def.MaxAttempts
	}
	return 0
}

// statusOf is GET /api/jobs/{id}'s view of a job (rdb holds the one mapping
// from asynq's data).
func statusOf(j rdb.Job) jobStatus {
	st := jobStatus{ID: j.ID, Type: j.Type, Queue: j.Queue, State: j.State, Attempts: j.Attempts,
		MaxAttempts: j.MaxAttempts, LastError: j.LastError}
	if !j.NextRunAt.IsZero() {
		n := j.NextRunAt
		st.NextRunAt = &n
	}
	if j.State == rdb.StateCompleted {
		c := j.CompletedAt
		st.CompletedAt = &c
	}
	return st
}
