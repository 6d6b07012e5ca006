package jobs

import (
	"testing"

	"github.com/errandhq/errand/internal/job"
)

// Every job a registration or an order queues names its entity, whether it
// is queued typed (serve's handlers) or as raw JSON (POST /api/jobs, errand
// enqueue); ops jobs name none.
func TestEveryJobNamesItsEntity(t *testing.T) {
	reg := testRegistry(t)
	cases := []struct {
		args job.Args
		want string
	}{
		{WelcomeEmail{UserID: 42, Email: "ada@example.com", FirstName: "Ada"}, "user:42"},
		{NotifyStaff{UserID: 42, Email: "ada@example.com", FirstName: "Ada"}, "user:42"},
		{SyncCRM{UserID: 42, Email: "ada@example.com", Changed: map[string]string{"first_name": "Ada"}}, "user:42"},
		{PushFulfillment{OrderID: 1001}, "order:1001"},
		{SyncTracking{ShipmentID: 7, OrderID: 1001, TrackingNumber: "1Z", Carrier: "UPS"}, "order:1001"},
		{ReconcileShipments{}, ""},
	}
	for _, c := range cases {
		e, err := reg.Prepare(c.args)
		if err != nil {
			t.Fatalf("%s: %v", c.args.Kind(), err)
		}
		if e.Entity != c.want {
			t.Errorf("%s: entity %q, want %q", c.args.Kind(), e.Entity, c.want)
		}
		raw, err := reg.PrepareRaw(e.Type, e.Payload)
		if err != nil {
			t.Fatalf("%s raw: %v", c.args.Kind(), err)
		}
		if raw.Entity != c.want {
			t.Errorf("%s queued as JSON: entity %q, want %q", c.args.Kind(), raw.Entity, c.want)
		}
		if c.want != "" && !job.ValidEntity(c.want) {
			t.Errorf("%q is not a valid entity", c.want)
		}
	}
	for _, bad := range []string{"", "user", "user:", "User:1", "user:4 2", "user:42\n", ":42"} {
		if job.ValidEntity(bad) {
			t.Errorf("ValidEntity(%q) = true", bad)
		}
	}
}
