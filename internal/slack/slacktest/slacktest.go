// Package slacktest is a fake of Slack's incoming webhooks for tests and the
// sandbox: POST /services/T…/B…/… with {"text"} (JSON, or a form's payload
// field) answers 200 "ok", and Slack's plain-text error codes otherwise. The
// sandbox (internal/sandbox) serves it with fault injection and a call log.
package slacktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Service names the fake in the sandbox's faults and call log.
const Service = "slack"

// Message is a message the fake accepted.
type Message struct {
	At   time.Time `json:"at"`
	Hook string    `json:"hook"` // the webhook's path, /services/T…/B…/…
	Text string    `json:"text"`
}

// Fake is Slack's incoming webhooks.
type Fake struct {
	hooks map[string]bool // the known webhooks' paths; empty = any

	mu       sync.Mutex
	messages []Message
}

// New returns a fake that knows the webhooks at webhookURLs (the reps'
// slack_webhook_url); with none, it takes every well-formed webhook path.
func New(webhookURLs ...string) *Fake {
	f := &Fake{hooks: map[string]bool{}}
	for _, raw := range webhookURLs {
		if u, err := url.Parse(raw); err == nil && u.Path != "" {
			f.hooks[u.Path] = true
		}
	}
	return f
}

// Service implements sandbox.Fake.
func (f *Fake) Service() string { return Service }

// Routes implements sandbox.Fake.
func (f *Fake) Routes() map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string) {
	// Not "POST /services/": that would collide with Telegram's
	// "POST /{bot}/sendMessage" on /services/sendMessage.
	return map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string){
		"POST /services/{team}/{bot}/{hook...}": f.webhook,
	}
}

// Messages returns the messages accepted, oldest first.
func (f *Fake) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.messages...)
}

// webhook is an incoming webhook: JSON (or a form's payload field) with text
// → 200 "ok"; Slack's plain-text error codes otherwise.
func (f *Fake) webhook(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	hook := r.PathValue("hook")
	if hook == "" || strings.Contains(hook, "/") || (len(f.hooks) > 0 && !f.hooks[r.URL.Path]) {
		return answer(w, http.StatusNotFound, "no_service"), "no such webhook"
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return answer(w, http.StatusBadRequest, "invalid_payload"), "unreadable form"
		}
		body = []byte(form.Get("payload"))
	}
	var msg struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return answer(w, http.StatusBadRequest, "invalid_payload"), "not JSON"
	}
	if msg.Text == nil || strings.TrimSpace(*msg.Text) == "" {
		return answer(w, http.StatusBadRequest, "no_text"), "no text"
	}
	f.mu.Lock()
	f.messages = append(f.messages, Message{At: time.Now(), Hook: r.URL.Path, Text: *msg.Text})
	f.mu.Unlock()
	return answer(w, http.StatusOK, "ok"), ""
}

// answer writes Slack's plain-text answer.
func answer(w http.ResponseWriter, status int, text string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
	return status
}
