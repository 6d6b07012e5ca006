package main

import (
	"context"
	"net/http"
	"reflect"
	"testing"
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
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	if code, _ := s.post("/api/users", registration("ada@shop.test")); code != http.StatusCreated {
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
