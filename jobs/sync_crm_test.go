package jobs_test

import (
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
	"github.com/errandhq/errand/jobs"
)

// A registration creates the contact; a profile change updates only the
// fields that changed, finding the contact under its old email.
func TestSyncCRMCreatesThenUpdates(t *testing.T) {
	e := newEnv(t)
	contact := map[string]string{"email": "ada@shop.test", "first_name": "Ada", "last_name": "Lovelace"}
	if err := e.run(jobs.SyncCRM{UserID: 7, Email: "ada@shop.test", Changed: contact, Contact: contact}); err != nil {
		t.Fatal(err)
	}
	if err := e.run(jobs.SyncCRM{UserID: 7, Email: "ada@shop.test", Changed: map[string]string{"email": "ada@lovelace.test", "last_name": "King"}}); err != nil {
		t.Fatal(err)
	}
	got := e.fakes.Tidio.Contacts()
	if len(got) != 1 || got[0]["email"] != "ada@lovelace.test" || got[0]["first_name"] != "Ada" || got[0]["last_name"] != "King" {
		t.Fatalf("contacts: %v", got)
	}
}

// A contact created since the look-up (a registration racing a profile
// change) is updated, not duplicated.
func TestSyncCRMUpdatesAContactMadeMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.fakes.Tidio.AddContact(map[string]string{"email": "ada@shop.test", "first_name": "Ada"})
	if err := e.run(jobs.SyncCRM{Email: "ada@shop.test", Changed: map[string]string{"last_name": "King"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.fakes.Tidio.Contacts(); len(got) != 1 || got[0]["last_name"] != "King" {
		t.Fatalf("contacts: %v", got)
	}
}

// Tidio's 429 waits for its next minute window, without using an attempt,
// and holds Tidio: the next job waits too, without calling it; a 5xx is
// retried; a refusal of the credentials is final.
func TestSyncCRMFailureClasses(t *testing.T) {
	e := newEnv(t)
	s := jobs.SyncCRM{Email: "ada@shop.test", Changed: map[string]string{"first_name": "Ada"}}
	e.fakes.AddFault(sandbox.Fault{Service: tidiotest.Service, Throttle: true, Count: 1})
	wait := wantClass(t, e.run(s), errand.Throttled)
	if wait <= 0 {
		t.Errorf("throttled without a wait")
	}
	calls := len(e.fakes.Calls(tidiotest.Service))
	if held := wantClass(t, e.run(s), errand.Throttled, "tidio held"); held <= 0 || held > wait {
		t.Errorf("the next job waits %s; Tidio asked for %s", held, wait)
	}
	if n := len(e.fakes.Calls(tidiotest.Service)); n != calls {
		t.Fatalf("Tidio called %d times while held", n-calls)
	}
	// The window has passed.
	e.timePasses("tidio")
	e.fakes.AddFault(sandbox.Fault{Service: tidiotest.Service, Status: 502, Count: 1})
	wantClass(t, e.run(s), errand.Transient, "502")
	e.fakes.AddFault(sandbox.Fault{Service: tidiotest.Service, Status: 401, Count: 1})
	wantClass(t, e.run(s), errand.Permanent, "401")
	if got := e.fakes.Tidio.Contacts(); len(got) != 0 {
		t.Fatalf("contacts: %v", got)
	}
}
