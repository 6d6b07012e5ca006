package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// receiver is a caller's callback endpoint answering status.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []*http.Request
	bodies [][]byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusNoContent}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got, r.bodies = append(r.got, req), append(r.bodies, body)
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) answer(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

// calls returns the requests received and their bodies.
func (r *receiver) calls() ([]*http.Request, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.got...), append([][]byte(nil), r.bodies...)
}

// saveCallback records a job queued through POST /api/jobs with a callback
// to url, and returns its id.
func (e *env) saveCallback(url string) string {
	e.t.Helper()
	env, err := e.reg.PrepareRaw("ops:noop", []byte(`{}`), job.WithCallback())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.SaveAPIJob(context.Background(), store.APIJob{Envelope: env, CallbackURL: url, CallbackToken: "caller-token"}); err != nil {
		e.t.Fatal(err)
	}
	return env.ID
}

// The outcome is POSTed to the job's callback URL with the caller's token,
// signed with api.callback_secret.
func TestCallbackPostsTheSignedOutcome(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	id := e.saveCallback(r.URL + "/hook")
	o := jobs.Outcome{ID: id, Type: "ops:noop", State: "completed", Attempts: 1}
	if err := e.run(o); err != nil {
		t.Fatal(err)
	}
	reqs, bodies := r.calls()
	if len(reqs) != 1 {
		t.Fatalf("%d calls", len(reqs))
	}
	req, body := reqs[0], bodies[0]
	var got jobs.Outcome
	if err := json.Unmarshal(body, &got); err != nil || got != o || req.URL.Path != "/hook" || req.Header.Get("X-Errand-Callback-Token") != "caller-token" {
		t.Fatalf("%s %s %s token %q", req.Method, req.URL.Path, body, req.Header.Get("X-Errand-Callback-Token"))
	}
	sig := req.Header.Get("X-Errand-Signature")
	ts, err := strconv.ParseInt(strings.TrimPrefix(strings.Split(sig, ",")[0], "t="), 10, 64)
	if err != nil || sig != jobs.Signature(e.cfg.API.CallbackSecret, ts, body) {
		t.Fatalf("signature %q does not verify", sig)
	}
}

// A receiver's 5xx is retried, its 4xx is final; a callback to a private
// address is refused for good unless api.allow_private_callbacks.
func TestCallbackFailureClasses(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t)
	o := jobs.Outcome{ID: e.saveCallback(r.URL + "/hook"), Type: "ops:noop", State: "failed", Attempts: 3, Error: "boom"}
	r.answer(http.StatusBadGateway)
	wantClass(t, e.run(o), errand.Transient, "502")
	r.answer(http.StatusGone)
	wantClass(t, e.run(o), errand.Permanent, "410")

	guarded := newEnv(t, func(c *config.Config) { c.API.AllowPrivateCallbacks = false })
	o.ID = guarded.saveCallback(r.URL + "/hook")
	wantClass(t, guarded.run(o), errand.Permanent, "127.0.0.1 resolves to a private address")
	if reqs, _ := r.calls(); len(reqs) != 2 {
		t.Fatalf("%d calls reached the receiver, want the 2 allowed", len(reqs))
	}
}
