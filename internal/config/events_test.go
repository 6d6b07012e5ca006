package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A table of [events] changes that event only; jobs = [] queues nothing; an
// event errand does not raise is one line naming the key.
func TestEventsOverrideOneEventAtATime(t *testing.T) {
	c, err := Load(writeFile(t, `
[events."user.registered"]
jobs = ["user:welcome_email", "user:notify_staff"]
[events."order.paid"]
jobs = []
`), true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Events["user.registered"].Jobs; !slices.Equal(got, []string{"user:welcome_email", "user:notify_staff"}) {
		t.Errorf("user.registered: %v", got)
	}
	if got := c.Events["order.paid"].Jobs; len(got) != 0 {
		t.Errorf("order.paid: %v, want none", got)
	}
	if got := c.Events["shipment.shipped"].Jobs; !slices.Equal(got, []string{"order:sync_tracking"}) {
		t.Errorf("shipment.shipped kept its default? %v", got)
	}
	_, err = Load(writeFile(t, "[events.\"user.deleted\"]\njobs = [\"ops:noop\"]\n"), true, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `events."user.deleted": errand raises no such event (events: order.paid, shipment.shipped, user.registered, user.updated)`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown event: %v", err)
	}
}

// [[schedule]] entries replace the default list (the reconciler) whole, as
// every list setting does.
func TestScheduleEntriesReplaceTheDefault(t *testing.T) {
	c, err := Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Schedule) != 1 || c.Schedule[0].Type != "ops:reconcile_shipments" || c.Schedule[0].Every != 5*time.Minute {
		t.Fatalf("default schedule: %+v", c.Schedule)
	}
	c, err = Load(writeFile(t, `
[[schedule]]
name = "nightly-report"
type = "ops:noop"
cron = "0 2 * * *"
timezone = "Europe/Berlin"
payload = { note = "x" }
`), true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Schedule) != 1 || c.Schedule[0].Name != "nightly-report" || c.Schedule[0].Cron != "0 2 * * *" || c.Schedule[0].Payload["note"] != "x" {
		t.Fatalf("schedule: %+v", c.Schedule)
	}
}
