package slacktest_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
)

func TestSlackWireFormat(t *testing.T) {
	fake := slacktest.New("https://hooks.slack.com/services/T000/B000/alice", "")
	h := sandbox.Of(fake).Handler()
	post := func(path, body string) (int, string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	hook := "/services/T000/B000/alice"
	if code, body := post(hook, `{"text":"hi"}`); code != 200 || body != "ok" {
		t.Fatalf("post: %d %q", code, body)
	}
	if code, body := post(hook, `{"text":`); code != 400 || body != "invalid_payload" {
		t.Fatalf("malformed JSON: %d %q", code, body)
	}
	if code, body := post(hook, `{"blocks":[]}`); code != 400 || body != "no_text" {
		t.Fatalf("no text: %d %q", code, body)
	}
	for _, path := range []string{"/services/T000/B000/bob", "/services/T000/B000/alice/x"} {
		if code, body := post(path, `{"text":"hi"}`); code != 404 || body != "no_service" {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	if m := fake.Messages(); len(m) != 1 || m[0].Hook != hook || m[0].Text != "hi" {
		t.Fatalf("messages: %+v", m)
	}
}

// With no webhook configured, the fake takes every well-formed one: a person
// trying errand may name any.
func TestSlackTakesAnyHookWhenNoneIsConfigured(t *testing.T) {
	fake := slacktest.New()
	r := httptest.NewRequest("POST", "/services/T1/B2/anything", strings.NewReader(`{"text":"hi"}`))
	w := httptest.NewRecorder()
	sandbox.Of(fake).Handler().ServeHTTP(w, r)
	if w.Code != 200 || len(fake.Messages()) != 1 {
		t.Fatalf("%d %q, %d messages", w.Code, w.Body.String(), len(fake.Messages()))
	}
}
