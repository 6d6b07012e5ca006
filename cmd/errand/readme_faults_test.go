package main

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// readmeFault returns the JSON of README's sandbox fault whose line
// contains marker, as README writes it.
func readmeFault(t *testing.T, marker string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`curl -sS -X POST \$S -d '([^']*)'`)
	for _, line := range strings.Split(string(readme), "\n") {
		if m := re.FindStringSubmatch(line); m != nil && strings.Contains(line, marker) {
			return m[1]
		}
	}
	t.Fatalf("README has no sandbox fault with %s", marker)
	return ""
}

// README's lost-answer fault, sent as written: the registration's CRM
// create is done and its answer lost; the job's retry finds the contact and
// updates it. One contact, and no request sent twice behind the policy's
// back: the sandbox sees the look-up, the create, then the retry's look-up
// and update.
func TestREADMELostAnswerFaultIsHonest(t *testing.T) {
	t.Parallel()
	s := tidioSide.start(t)
	fault := readmeFault(t, `"drop_response":true`)
	resp, err := http.Post(s.fakes+"/_sandbox/faults", "application/x-www-form-urlencoded", bytes.NewReader([]byte(fault)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the sandbox refused README's fault %s: %d", fault, resp.StatusCode)
	}
	if status, body := s.post("/api/users", registration("ada@shop.test"), nil); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, body)
	}
	s.waitFor(30*time.Second, "the CRM sync to complete", func() bool {
		return len(s.worker.lines("type=user:sync_crm", "job done")) == 1
	})
	if done := s.worker.lines("type=user:sync_crm", "job done"); !strings.Contains(done[0], "attempt=2 ") {
		t.Fatalf("want the sync done on its second attempt: %s", done[0])
	}
	if contacts := s.sandbox.Tidio.Contacts(); len(contacts) != 1 {
		t.Fatalf("%d contacts, want 1: %v", len(contacts), contacts)
	}
	var calls []string
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		call := c.Method + " " + c.Path
		if strings.Contains(c.Note, "(response dropped)") {
			call += " (response dropped)"
		}
		calls = append(calls, call)
	}
	id := s.sandbox.Tidio.Contacts()[0]["id"]
	want := "GET /contacts,POST /contacts (response dropped),GET /contacts,PATCH /contacts/" + id.(string)
	if got := strings.Join(calls, ","); got != want {
		t.Fatalf("Tidio calls\n %s\nwant\n %s", got, want)
	}
}
