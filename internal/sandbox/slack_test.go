package sandbox

import (
	"testing"

	"github.com/errandhq/errand/internal/config"
)

func TestSlackWireFormat(t *testing.T) {
	s, srv := wireServer(t, func(c *config.Config) {
		c.Notify.Reps = map[string]config.Rep{"alice": {SlackWebhookURL: "https://hooks.slack.com/services/T000/B000/alice"}}
	})
	hook := srv.URL + "/services/T000/B000/alice"
	if code, _, body := wireCall(t, "POST", hook, `{"text":"hi"}`); code != 200 || body != "ok" {
		t.Fatalf("post: %d %q", code, body)
	}
	if code, _, body := wireCall(t, "POST", hook, `{"text":`); code != 400 || body != "invalid_payload" {
		t.Fatalf("malformed JSON: %d %q", code, body)
	}
	if code, _, body := wireCall(t, "POST", hook, `{"blocks":[]}`); code != 400 || body != "no_text" {
		t.Fatalf("no text: %d %q", code, body)
	}
	for _, path := range []string{"/services/T000/B000/bob", "/services/T000/B000/alice/x"} {
		if code, _, body := wireCall(t, "POST", srv.URL+path, `{"text":"hi"}`); code != 404 || body != "no_service" {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	if m := s.SlackMessages(); len(m) != 1 || m[0].Hook != "/services/T000/B000/alice" || m[0].Text != "hi" {
		t.Fatalf("messages: %+v", m)
	}
}
