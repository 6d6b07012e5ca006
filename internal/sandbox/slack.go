package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// SlackMessage is a message a fake incoming webhook accepted.
type SlackMessage struct {
	At   time.Time `json:"at"`
	Hook string    `json:"hook"` // the webhook's path, /services/T…/B…/…
	Text string    `json:"text"`
}

type slackState struct {
	mu       sync.Mutex
	messages []SlackMessage
}

func init() {
	registrars = append(registrars, func(s *Sandbox) {
		// Not "POST /services/": that would collide with Telegram's
		// "POST /{bot}/sendMessage" on /services/sendMessage.
		s.Handle(Slack, "POST /services/{team}/{bot}/{hook...}", s.slackWebhook)
	})
}

func (s *Sandbox) slackState() *slackState {
	return State(s, Slack, func() *slackState { return &slackState{} })
}

// SlackMessages returns the messages the fake webhooks accepted, oldest first.
func (s *Sandbox) SlackMessages() []SlackMessage {
	st := s.slackState()
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]SlackMessage(nil), st.messages...)
}

// slackWebhook is an incoming webhook: JSON (or a form's payload field) with
// text → 200 "ok"; Slack's plain-text error codes otherwise.
func (s *Sandbox) slackWebhook(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	hook := r.PathValue("hook")
	if hook == "" || strings.Contains(hook, "/") || !s.slackHookKnown(r.URL.Path) {
		return slackAnswer(w, http.StatusNotFound, "no_service"), "no such webhook"
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return slackAnswer(w, http.StatusBadRequest, "invalid_payload"), "unreadable form"
		}
		body = []byte(form.Get("payload"))
	}
	var msg struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return slackAnswer(w, http.StatusBadRequest, "invalid_payload"), "not JSON"
	}
	if msg.Text == nil || strings.TrimSpace(*msg.Text) == "" {
		return slackAnswer(w, http.StatusBadRequest, "no_text"), "no text"
	}
	st := s.slackState()
	st.mu.Lock()
	st.messages = append(st.messages, SlackMessage{At: time.Now(), Hook: r.URL.Path, Text: *msg.Text})
	st.mu.Unlock()
	return slackAnswer(w, http.StatusOK, "ok"), ""
}

// slackHookKnown reports whether path is the path of a configured rep's
// webhook; with no webhook configured, every well-formed path is.
func (s *Sandbox) slackHookKnown(path string) bool {
	configured := false
	for _, rep := range s.Config().Notify.Reps {
		if rep.SlackWebhookURL == "" {
			continue
		}
		configured = true
		if u, err := url.Parse(rep.SlackWebhookURL); err == nil && u.Path == path {
			return true
		}
	}
	return !configured
}

func slackAnswer(w http.ResponseWriter, status int, text string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
	return status
}
