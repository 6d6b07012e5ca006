package main

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/store"
	"github.com/hibiken/asynq"
)

// Authorization headers an attacker tries instead of a token: none, a guess,
// another scheme, and look-alikes of a real token that only match when the
// server trims what it compares.
var forgedAuthorizations = map[string]string{
	"no header":                   "",
	"a wrong token":               "Bearer wrong-token-0123456789",
	"a no-break space":            "Bearer \u00a0",
	"an empty bearer":             "Bearer ",
	"the token, space-padded":     "Bearer  " + firstToken,
	"the token, no-break padded":  "Bearer " + firstToken + "\u00a0",
	"the token, nbsp before":      "Bearer \u00a0" + firstToken,
	"the token in another scheme": "Basic " + firstToken,
	"the token without a scheme":  firstToken,
}

// Users' ids count up from 1: without a token, PATCH /api/users/{id} read
// every user (a no-op change answers the record) and rewrote their email,
// which was pushed to the CRM.
func TestAttackPatchUserWithoutValidToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	if code, _ := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("registration: %d", code)
	}
	ctx := context.Background()
	before, err := s.db().GetUser(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	crmBefore := len(s.queued("crm"))
	for what, auth := range forgedAuthorizations {
		for _, body := range []string{`{"sales_rep":""}`, `{"email":"mallory@evil.test","first_name":"Mallory"}`} {
			code, out, hdr := s.api("PATCH", "/api/users/1", "", body, "Authorization", auth)
			if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s, %s: %d %v, want 401", what, body, code, out)
			}
			if out["email"] != nil || out["first_name"] != nil {
				t.Errorf("%s: the answer shows the user: %v", what, out)
			}
		}
	}
	after, err := s.db().GetUser(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("the user changed: %+v, was %+v", after, before)
	}
	if n := len(s.queued("crm")); n != crmBefore {
		t.Fatalf("%d user:sync_crm jobs, want %d: a refused PATCH queued one", n, crmBefore)
	}

	// The shop's backend, with its token (the scheme in any case), still may.
	code, out, _ := s.api("PATCH", "/api/users/1", "", `{"last_name":"King"}`, "Authorization", "bearer "+secondToken)
	if code != http.StatusOK || out["last_name"] != "King" {
		t.Fatalf("with a token: %d %v", code, out)
	}
	if n := len(s.queued("crm")); n != crmBefore+1 {
		t.Fatalf("%d user:sync_crm jobs after a real change, want %d", n, crmBefore+1)
	}
}

// The same forged headers get nothing from the job API either.
func TestAttackJobAPIWithForgedToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	for what, auth := range forgedAuthorizations {
		if code, out, _ := s.api("POST", "/api/jobs", "", `{"type":"ops:noop","payload":{}}`, "Authorization", auth); code != http.StatusUnauthorized {
			t.Errorf("POST with %s: %d %v, want 401", what, code, out)
		}
	}
	if n := len(s.queued("default")); n != 0 {
		t.Fatalf("forged requests queued %d jobs", n)
	}
}

// Token B guesses or learns token A's job id; errand's own jobs (a
// registration's emails, the callback jobs) are no client's.
func TestAttackReadJobOfAnotherToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML})
	sink := startReceiver(t, nil)
	code, acc, _ := s.api("POST", "/api/jobs", firstToken,
		`{"type":"ops:noop","payload":{},"callback_url":"`+sink.URL+`/done","callback_token":"cb-token"}`)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue: %d %v", code, acc)
	}
	path := "/api/jobs/" + acc["id"].(string)
	_, unknown, _ := s.api("GET", "/api/jobs/01NOPE", secondToken, "")

	// Finished and long out of the outbox: still only A's.
	s.waitJobState(firstToken, acc["id"].(string), "completed")
	if _, err := s.db().OutboxJob(context.Background(), acc["id"].(string)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the job is still in the outbox (%v); the test would not reach Redis", err)
	}
	code, out, _ := s.api("GET", path, secondToken, "")
	if code != http.StatusNotFound {
		t.Errorf("token B read token A's job: %d %v", code, out)
	}
	if !reflect.DeepEqual(out, unknown) {
		t.Errorf("another token's job answers %v, an unknown id %v: ids can be probed", out, unknown)
	}
	if code, out, _ := s.api("GET", path, firstToken, ""); code != http.StatusOK || out["id"] != acc["id"] {
		t.Fatalf("token A reads its own job: %d %v", code, out)
	}

	// The callback errand sent for it is errand's own job.
	s.waitFor(20*time.Second, "the callback", func() bool { return sink.count() > 0 })
	cb := "/api/jobs/callback-" + acc["id"].(string) + "-completed"
	s.waitFor(10*time.Second, "the callback job to complete", func() bool {
		info, err := s.inspector().GetTaskInfo("default", strings.TrimPrefix(cb, "/api/jobs/"))
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	for _, tok := range []string{firstToken, secondToken} {
		if code, out, _ := s.api("GET", cb, tok, ""); code != http.StatusNotFound {
			t.Errorf("a token read errand's callback job: %d %v", code, out)
		}
	}

	// A registration's jobs carry the user's email: no token reads them.
	if code, _ := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
		t.Fatalf("registration: %d", code)
	}
	var ids []string
	s.waitFor(10*time.Second, "the registration's jobs in Redis", func() bool {
		ids = s.jobIDs("emails", "notifications", "crm")
		return len(ids) >= 3
	})
	for _, id := range ids {
		for _, tok := range []string{firstToken, secondToken} {
			if code, out, _ := s.api("GET", "/api/jobs/"+id, tok, ""); code != http.StatusNotFound {
				t.Errorf("a token read registration job %s: %d %v", id, code, out)
			}
		}
	}
}

// critical carries the developers' escalation emails: a client filling it
// would hold them up.
func TestAttackQueueOnCritical(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: apiTOML + `
[jobs."user:notify_staff"]
queue = "critical"
`})
	for _, body := range []string{
		`{"type":"ops:noop","payload":{},"queue":"critical"}`,
		`{"type":"ops:noop","payload":{},"queue":"critical","delay":"1h"}`,
		// A type whose default queue is critical is sent elsewhere or not at all.
		`{"type":"user:notify_staff","payload":{"user_id":1,"email":"a@shop.test","first_name":"A","last_name":"B"}}`,
	} {
		code, out, _ := s.api("POST", "/api/jobs", firstToken, body)
		fields, _ := out["fields"].(map[string]any)
		if code != http.StatusUnprocessableEntity || fields["queue"] == nil {
			t.Fatalf("%s: %d %v, want 422 naming queue", body, code, out)
		}
	}
	if ids := s.jobIDs("critical"); len(ids) != 0 {
		t.Fatalf("jobs on critical: %v", ids)
	}
	code, out, _ := s.api("POST", "/api/jobs", firstToken,
		`{"type":"user:notify_staff","queue":"notifications","payload":{"user_id":1,"email":"a@shop.test","first_name":"A","last_name":"B"}}`)
	if code != http.StatusAccepted || out["queue"] != "notifications" {
		t.Fatalf("on another queue: %d %v", code, out)
	}
	if ids := s.jobIDs("critical"); len(ids) != 0 {
		t.Fatalf("jobs on critical: %v", ids)
	}
}
