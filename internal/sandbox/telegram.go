package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TelegramRetryAfter is the retry_after, in seconds, the fake bot API answers
// when a throttle fault is injected.
const TelegramRetryAfter = 2

// TelegramMessage is a message the fake bot API accepted.
type TelegramMessage struct {
	At        time.Time `json:"at"`
	MessageID int64     `json:"message_id"`
	ChatID    string    `json:"chat_id"`
	Text      string    `json:"text"`
}

type telegramState struct {
	mu       sync.Mutex
	messages []TelegramMessage
}

func init() {
	registrars = append(registrars, func(s *Sandbox) {
		s.Handle(Telegram, "POST /{bot}/sendMessage", s.telegramSendMessage)
	})
	throttlers[Telegram] = func(w http.ResponseWriter) int {
		return telegramError(w, http.StatusTooManyRequests,
			fmt.Sprintf("Too Many Requests: retry after %d", TelegramRetryAfter), TelegramRetryAfter)
	}
}

func (s *Sandbox) telegramState() *telegramState {
	return State(s, Telegram, func() *telegramState { return &telegramState{} })
}

// TelegramMessages returns the messages the fake bot API accepted, oldest
// first.
func (s *Sandbox) TelegramMessages() []TelegramMessage {
	st := s.telegramState()
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]TelegramMessage(nil), st.messages...)
}

// telegramSendMessage is the Bot API's sendMessage: the token in the path must
// be notify.telegram_bot_token; chat_id and text are required (JSON, or a
// form as the real API also takes); a configured rep's chat must be known.
func (s *Sandbox) telegramSendMessage(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	token, ok := strings.CutPrefix(r.PathValue("bot"), "bot")
	if !ok {
		return telegramError(w, http.StatusNotFound, "Not Found", 0), "not a bot path"
	}
	want := s.Config().Notify.TelegramBotToken
	if want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		return telegramError(w, http.StatusUnauthorized, "Unauthorized", 0), "wrong bot token"
	}
	var chatID, text string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var req struct {
			ChatID json.RawMessage `json:"chat_id"`
			Text   string          `json:"text"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return telegramError(w, http.StatusBadRequest, "Bad Request: can't parse JSON object", 0), "not JSON"
		}
		chatID, text = telegramChatID(req.ChatID), req.Text
	} else {
		form, _ := url.ParseQuery(string(body))
		chatID, text = form.Get("chat_id"), form.Get("text")
	}
	switch {
	case chatID == "":
		return telegramError(w, http.StatusBadRequest, "Bad Request: chat_id is empty", 0), "no chat_id"
	case strings.TrimSpace(text) == "":
		return telegramError(w, http.StatusBadRequest, "Bad Request: message text is empty", 0), "no text"
	case len([]rune(text)) > 4096:
		return telegramError(w, http.StatusBadRequest, "Bad Request: message is too long", 0), "text over 4096 characters"
	case !s.telegramChatKnown(chatID):
		return telegramError(w, http.StatusBadRequest, "Bad Request: chat not found", 0), "unknown chat"
	}
	st := s.telegramState()
	st.mu.Lock()
	m := TelegramMessage{At: time.Now(), MessageID: int64(len(st.messages) + 1), ChatID: chatID, Text: text}
	st.messages = append(st.messages, m)
	st.mu.Unlock()
	chat := map[string]any{"id": chatID, "type": "private"}
	if n, err := strconv.ParseInt(chatID, 10, 64); err == nil {
		chat["id"] = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": map[string]any{
		"message_id": m.MessageID, "date": m.At.Unix(), "chat": chat, "text": text,
	}})
	return http.StatusOK, ""
}

// telegramChatID reads chat_id, which the Bot API takes as a number or a
// string (a numeric id or @channelusername).
func telegramChatID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// telegramChatKnown reports whether chatID is a configured rep's chat; with
// no chat configured, every chat is.
func (s *Sandbox) telegramChatKnown(chatID string) bool {
	configured := false
	for _, rep := range s.Config().Notify.Reps {
		if rep.TelegramChatID == "" {
			continue
		}
		configured = true
		if rep.TelegramChatID == chatID {
			return true
		}
	}
	return !configured
}

// telegramError answers the Bot API's error format; retryAfter > 0 adds
// parameters.retry_after.
func telegramError(w http.ResponseWriter, status int, description string, retryAfter int) int {
	answer := map[string]any{"ok": false, "error_code": status, "description": description}
	if retryAfter > 0 {
		answer["parameters"] = map[string]int{"retry_after": retryAfter}
	}
	writeJSON(w, status, answer)
	return status
}
