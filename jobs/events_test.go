package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// raised is what each job of ev carries: type → payload (and delay).
func raised(t *testing.T, ev *job.Events, e job.Event) map[string]string {
	t.Helper()
	out, err := ev.Raise(e)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, env := range out {
		got[env.Type] = string(env.Payload)
		if d := env.DueAt.Sub(env.QueuedAt); d != 0 {
			got[env.Type] += " after " + d.Round(time.Second).String()
		}
	}
	return got
}

// With the default [events], each event queues exactly the jobs and
// payloads its handler queued when the handlers named the jobs themselves.
func TestDefaultEventsQueueWhatTheHandlersQueued(t *testing.T) {
	ev, err := job.NewEvents(defaultRegistry(t), config.Default().Events)
	if err != nil {
		t.Fatal(err)
	}
	ada := store.User{ID: 7, Email: "ada@shop.test", FirstName: "Ada", LastName: "Lovelace", SalesRep: "bob", PasswordHash: "$2a$10$secret"}
	contact := `{"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace"}`
	want := map[string]string{
		"user:welcome_email": `{"user_id":7,"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace"} after 5s`,
		"user:notify_staff":  `{"user_id":7,"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace","sales_rep":"bob"}`,
		"user:sync_crm":      `{"user_id":7,"email":"ada@shop.test","changed":` + contact + `,"contact":` + contact + `}`,
	}
	if got := raised(t, ev, jobs.UserRegistered{User: ada}); !equal(got, want) {
		t.Errorf("user.registered queued %v,\nwant %v", got, want)
	}
	renamed := ada
	renamed.LastName, renamed.Email = "King", "ada@king.test"
	want = map[string]string{"user:sync_crm": `{"user_id":7,"email":"ada@shop.test","changed":{"email":"ada@king.test","last_name":"King"},"contact":{"email":"ada@king.test","first_name":"Ada","last_name":"King"}}`}
	if got := raised(t, ev, jobs.UserUpdated{Before: ada, After: renamed}); !equal(got, want) {
		t.Errorf("user.updated queued %v,\nwant %v", got, want)
	}
	// Nothing the CRM holds changed: no job.
	newRep := ada
	newRep.SalesRep = "carol"
	if got := raised(t, ev, jobs.UserUpdated{Before: ada, After: newRep}); len(got) != 0 {
		t.Errorf("a sales-rep change queued %v", got)
	}
	want = map[string]string{"order:push_fulfillment": `{"order_id":820982911946154508}`}
	if got := raised(t, ev, jobs.OrderPaid{Order: store.Order{ID: 820982911946154508, Payload: "{}"}}); !equal(got, want) {
		t.Errorf("order.paid queued %v, want %v", got, want)
	}
	sh := store.Shipment{ID: 3, OrderID: 820982911946154508, TrackingNumber: "1Z999", Carrier: "UPS", TrackingURL: "https://track.test/1Z999"}
	want = map[string]string{"order:sync_tracking": `{"shipment_id":3,"order_id":820982911946154508,"tracking_number":"1Z999","carrier":"UPS","tracking_url":"https://track.test/1Z999"}`}
	if got := raised(t, ev, jobs.ShipmentShipped{Shipment: sh}); !equal(got, want) {
		t.Errorf("shipment.shipped queued %v, want %v", got, want)
	}
	if e := (jobs.ShipmentShipped{Shipment: sh}).Entity(); e != "order:820982911946154508" {
		t.Errorf("a shipment's entity is %q", e)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A type that is unknown, or not built from the event that names it, is one
// line naming the key.
func TestEventsRefuseTypesTheyCannotBuild(t *testing.T) {
	reg := defaultRegistry(t)
	for _, c := range []struct {
		events map[string]config.Event
		want   string
	}{
		{map[string]config.Event{"user.registered": {Jobs: []string{"user:welcome_emial"}}}, `events."user.registered".jobs: unknown job type "user:welcome_emial"`},
		{map[string]config.Event{"order.paid": {Jobs: []string{"user:welcome_email"}}}, `events."order.paid".jobs: user:welcome_email cannot be built from order.paid (it is built from: user.registered; types built from order.paid: order:push_fulfillment)`},
		{map[string]config.Event{"order.paid": {Jobs: []string{"ops:noop"}}}, `events."order.paid".jobs: ops:noop cannot be built from order.paid (it is built from: none;`},
		{map[string]config.Event{"user.updated": {Jobs: []string{"user:sync_crm", "user:sync_crm"}}}, `events."user.updated".jobs: user:sync_crm is listed twice`},
	} {
		_, err := job.NewEvents(reg, c.events)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line with %q", c.events, err, c.want)
		}
	}
}
