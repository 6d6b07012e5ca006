package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The attacker signs up with names that carry line breaks (to forge lines in
// the staff's Slack message and fields in the CRM) or a bidi override (to make
// "Ada<U+202E>txt.exe" read "Adaexe.txt"). Each is refused naming the field,
// and nothing is stored, queued or sent on.
func TestRegistrationRefusesNamesWithControlOrBidiCharacters(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true, toml: apiTOML})
	attacks := []string{"Ada\r\nInjected: yes", "Ada\nInjected", "Ada\u202Etxt.exe", "Ada\u2066Injected\u2069", "Ada\x00Injected"}
	for _, field := range []string{"first_name", "last_name", "sales_rep"} {
		for _, v := range attacks {
			body := registration("mallory@shop.test")
			body[field] = v
			status, out := s.post("/api/users", body, nil)
			fields, _ := out["fields"].(map[string]any)
			if status != http.StatusUnprocessableEntity || fields[field] == nil {
				t.Errorf("sign-up with %s %q: %d %v, want 422 naming %s", field, v, status, out, field)
			}
		}
	}
	st := s.db()
	ctx := context.Background()
	if n, err := st.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("users stored: %d (%v), want 0", n, err)
	}
	if n, _, err := st.OutboxBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("jobs waiting in the outbox: %d (%v), want 0", n, err)
	}

	// The profile change takes the same names through the same check.
	status, created := s.post("/api/users", registration("ada@shop.test"), nil)
	if status != http.StatusCreated {
		t.Fatalf("clean sign-up: %d %v", status, created)
	}
	id := int64(created["id"].(float64))
	s.waitFor(10*time.Second, "the sign-up's jobs to reach Redis", func() bool { n, _, _ := st.OutboxBacklog(ctx); return n == 0 })
	crmBefore := len(s.queued("crm"))
	for _, field := range []string{"first_name", "last_name", "sales_rep"} {
		for _, v := range attacks {
			body, _ := json.Marshal(map[string]string{field: v})
			status, out, _ := s.api("PATCH", fmt.Sprintf("/api/users/%d", id), firstToken, string(body))
			fields, _ := out["fields"].(map[string]any)
			if status != http.StatusUnprocessableEntity || fields[field] == nil {
				t.Errorf("PATCH %s %q: %d %v, want 422 naming %s", field, v, status, out, field)
			}
		}
	}
	u, err := st.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.FirstName != "Ada" || u.LastName != "Lovelace" || u.SalesRep != "" {
		t.Fatalf("the refused changes changed the user: %+v", u)
	}
	if n := len(s.queued("crm")); n != crmBefore {
		t.Fatalf("the refused changes queued %d CRM jobs", n-crmBefore)
	}
	for key, text := range s.redisText() {
		if strings.Contains(text, "Injected") || strings.Contains(text, "\u202E") {
			t.Fatalf("Redis key %s holds the attacker's name: %.200q", key, text)
		}
	}
}
