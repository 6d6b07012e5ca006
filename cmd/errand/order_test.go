package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

// One user's profile changes reach the CRM one at a time, in the order made,
// even with two workers free to run them all at once and a slow CRM (300 ms
// a call); another user's change is not held back by them.
func TestProfileChangesReachTheCRMInOrder(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML + "\n[worker]\nconcurrency = 8\n"})
	s.startWorker(&syncBuffer{})
	userOf := func(email string) (int, string) {
		t.Helper()
		status, created := s.post("/api/users", registration(email), nil)
		if status != http.StatusCreated && status != http.StatusOK {
			t.Fatalf("register %s: %d %v", email, status, created)
		}
		var contact string
		s.waitFor(15*time.Second, "the contact of "+email, func() bool {
			for _, c := range s.sandbox.Tidio.Contacts() {
				if c["email"] == email {
					contact, _ = c["id"].(string)
				}
			}
			return contact != ""
		})
		return int(created["id"].(float64)), contact
	}
	ada, adaContact := userOf("ada@shop.test")
	bob, bobContact := userOf("bob@shop.test")

	const latency = 300 * time.Millisecond
	s.sandbox.AddFault(sandbox.Fault{Service: tidiotest.Service, Latency: latency})
	patch := func(user int, lastName string) {
		t.Helper()
		body := fmt.Sprintf(`{"last_name":%q}`, lastName)
		if status, out, _ := s.api("PATCH", fmt.Sprintf("/api/users/%d", user), firstToken, body); status != http.StatusOK {
			t.Fatalf("PATCH user %d: %d %v", user, status, out)
		}
	}
	for i := 1; i <= 5; i++ {
		patch(ada, fmt.Sprintf("Ada%d", i))
	}
	patch(bob, "Bob1")

	lastName := func(contact string) string {
		for _, c := range s.sandbox.Tidio.Contacts() {
			if c["id"] == contact {
				s, _ := c["last_name"].(string)
				return s
			}
		}
		return ""
	}
	s.waitFor(30*time.Second, "ada's five changes and bob's one in the CRM", func() bool {
		return len(patches(s, adaContact)) == 5 && len(patches(s, bobContact)) == 1
	})
	s.sandbox.ClearFaults()

	adas := patches(s, adaContact)
	for i, c := range adas {
		if want := fmt.Sprintf("Ada%d", i+1); !strings.Contains(c.Request, want) {
			t.Errorf("PATCH %d of ada's contact sent %s, want %s", i+1, c.Request, want)
		}
		// Each call is answered latency after it arrives: the next one must
		// not arrive before.
		if i > 0 && c.At.Before(adas[i-1].At.Add(latency)) {
			t.Errorf("PATCH %d of ada's contact arrived %s after PATCH %d, before it was answered", i+1, c.At.Sub(adas[i-1].At), i)
		}
	}
	if got := lastName(adaContact); got != "Ada5" {
		t.Errorf("ada's contact ends with last_name %q, want Ada5", got)
	}
	// Bob's change went while ada's line was still going: it was answered
	// before ada's last change even arrived.
	bobs := patches(s, bobContact)
	if answered := bobs[0].At.Add(latency); !answered.Before(adas[4].At) {
		t.Errorf("bob's change answered at %s, after ada's last change arrived (%s): held back by another user's line",
			answered.Format(time.StampMilli), adas[4].At.Format(time.StampMilli))
	}
	if got := lastName(bobContact); got != "Bob1" {
		t.Errorf("bob's contact ends with last_name %q, want Bob1", got)
	}
}

// patches are the PATCH calls the CRM answered for contact, in the order they
// arrived.
func patches(s *stack, contact string) []sandbox.Call {
	var out []sandbox.Call
	for _, c := range s.sandbox.Calls(tidiotest.Service) {
		if c.Method == http.MethodPatch && c.Path == "/contacts/"+contact && c.Status == http.StatusOK {
			out = append(out, c)
		}
	}
	// The log is in the order calls were answered; order them by arrival.
	slices.SortStableFunc(out, func(a, b sandbox.Call) int { return a.At.Compare(b.At) })
	return out
}
