package jobs_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/jobs"
)

// full is a payload of each job type with every field set, as a caller of
// POST /api/jobs or `errand enqueue` would send it.
var full = map[string]string{
	"user:welcome_email":      `{"user_id":7,"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace"}`,
	"user:notify_staff":       `{"user_id":7,"email":"ada@shop.test","first_name":"Ada","last_name":"Lovelace","sales_rep":"bob"}`,
	"user:sync_crm":           `{"user_id":7,"email":"ada@shop.test","changed":{"last_name":"X"},"contact":{"email":"ada@shop.test","first_name":"Ada","last_name":"X"}}`,
	"order:push_fulfillment":  `{"order_id":820982911946154508}`,
	"order:sync_tracking":     `{"shipment_id":3,"order_id":820982911946154508,"tracking_number":"1Z999","carrier":"UPS","tracking_url":"https://track.test/1Z999"}`,
	"ops:reconcile_shipments": `{}`,
	"ops:noop":                `{}`,
	"ops:escalate":            `{"failures":[{"id":"J1","type":"ops:noop","queue":"default","attempts":1,"max_attempts":3,"class":"permanent","error":"boom","queued_at":"2026-01-02T03:04:05Z","failed_at":"2026-01-02T03:04:06Z","payload":"{}"}]}`,
	"ops:callback":            `{"id":"J1","type":"ops:noop","state":"failed","attempts":3,"error":"boom"}`,
}

// defaultRegistry is the registry of `errand serve` at the defaults.
func defaultRegistry(t *testing.T) *job.Registry {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return registry(t, cfg)
}

// Every job type's payload survives being re-encoded on its way into Redis:
// what a caller sent with every field set is what the handler will read, and
// a field the type does not know is dropped.
func TestEveryJobTypeRoundTripsAndDropsUnknownFields(t *testing.T) {
	reg := defaultRegistry(t)
	for _, typ := range reg.Types() {
		t.Run(typ, func(t *testing.T) {
			sent, ok := full[typ]
			if !ok {
				t.Fatalf("no full payload for %s here: add one, so its re-encoding is tested", typ)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(sent), &want); err != nil {
				t.Fatal(err)
			}
			smuggled := strings.Replace(sent, "{", `{"password":"smuggled-secret-value","Extra":{"x":1},`, 1)
			smuggled = strings.Replace(smuggled, `,}`, `}`, 1)
			e, err := reg.PrepareRaw(typ, []byte(smuggled))
			if err != nil {
				t.Fatalf("PrepareRaw(%s): %v", smuggled, err)
			}
			if strings.Contains(string(e.Payload), "smuggled") || strings.Contains(string(e.Payload), "Extra") {
				t.Fatalf("an unknown field reached the stored payload: %s", e.Payload)
			}
			var got map[string]any
			if err := json.Unmarshal(e.Payload, &got); err != nil {
				t.Fatal(err)
			}
			// The stored payload holds every field that was sent, with the
			// value sent; it may add the type's empty fields.
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("field %s: stored %v, sent %v (stored payload %s)", k, got[k], v, e.Payload)
				}
			}
			// Stored once more, it does not change: the stored form is stable.
			again, err := reg.PrepareRaw(typ, e.Payload)
			if err != nil || string(again.Payload) != string(e.Payload) {
				t.Fatalf("re-encoding the stored payload gave %s, %v", again.Payload, err)
			}
			if err := mustDef(t, reg, typ).Check(e.Payload); err != nil {
				t.Fatalf("the stored payload does not pass its own check: %v", err)
			}
		})
	}
}

func mustDef(t *testing.T, reg *job.Registry, typ string) *job.Definition {
	t.Helper()
	def, err := reg.Lookup(typ)
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// user:sync_crm's maps take any key: only the contact's fields are let in,
// so a caller cannot send a password to the CRM or store one in Redis
// through them.
func TestSyncCRMRefusesFieldsOtherThanTheContacts(t *testing.T) {
	reg := defaultRegistry(t)
	for _, p := range []string{
		`{"email":"ada@shop.test","changed":{"password":"smuggled-secret-value"}}`,
		`{"email":"ada@shop.test","changed":{"email":"ada@shop.test"},"contact":{"api_key":"smuggled-secret-value"}}`,
	} {
		_, err := reg.PrepareRaw("user:sync_crm", []byte(p))
		if !errors.Is(err, job.ErrInvalidPayload) || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// Typed jobs keep their payload as the type encodes it.
func TestPrepareKeepsTypedPayload(t *testing.T) {
	reg := defaultRegistry(t)
	e, err := reg.Prepare(jobs.WelcomeEmail{UserID: 1, Email: "a@b.test", FirstName: "A"}, job.Delay(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Payload) != `{"user_id":1,"email":"a@b.test","first_name":"A","last_name":""}` || e.Queue != "emails" {
		t.Fatalf("envelope: %+v (payload %s)", e, e.Payload)
	}
	if _, err := reg.Prepare(jobs.WelcomeEmail{}); !errors.Is(err, job.ErrInvalidPayload) {
		t.Fatalf("an invalid typed job was prepared: %v", err)
	}
}
