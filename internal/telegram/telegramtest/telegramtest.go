// Package telegramtest is a fake of the Telegram Bot API's sendMessage for
// tests and the sandbox: POST /bot<token>/sendMessage with {"chat_id","text"}
// (JSON or a form), answering {"ok":true,"result":{…}} or
// {"ok":false,"error_code","description"} as the Bot API does. The sandbox
// (internal/sandbox) serves it with fault injection and a call log.
package telegramtest

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

// Service names the fake in the sandbox's faults and call log.
const Service = "telegram"

// RetryAfter is the retry_after, in seconds, the fake answers when it
// throttles.
const RetryAfter = 2

// Message is a message the fake accepted.
type Message struct {
	At        time.Time `json:"at"`
	MessageID int64     `json:"message_id"`
	ChatID    string    `json:"chat_id"`
	Text      string    `json:"text"`
}

// Fake is one bot's Bot API.
type Fake struct {
	token string
	chats map[string]bool // the known chats; empty = any

	mu       sync.Mutex
	messages []Message
}

// New returns the Bot API of the bot with token (notify.telegram_bot_token),
// knowing chats (the reps' telegram_chat_id); with none, it knows every chat.
// With an empty token, every call is refused.
func New(token string, chats ...string) *Fake {
	f := &Fake{token: token, chats: map[string]bool{}}
	for _, c := range chats {
		if c != "" {
			f.chats[c] = true
		}
	}
	return f
}

// Service implements sandbox.Fake.
func (f *Fake) Service() string { return Service }

// Routes implements sandbox.Fake.
func (f *Fake) Routes() map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string) {
	return map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string){
		"POST /{bot}/sendMessage": f.sendMessage,
	}
}

// Throttle answers as the Bot API does when a bot sends too much: 429 with
// parameters.retry_after.
func (f *Fake) Throttle(w http.ResponseWriter) int {
	return apiError(w, http.StatusTooManyRequests, fmt.Sprintf("Too Many Requests: retry after %d", RetryAfter), RetryAfter)
}

// Messages returns the messages accepted, oldest first.
func (f *Fake) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.messages...)
}

// sendMessage is the Bot API's sendMessage: the token in the path must be the
// bot's; chat_id and text are required (JSON, or a form as the real API also
// takes); a chat must be known.
func (f *Fake) sendMessage(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	token, ok := strings.CutPrefix(r.PathValue("bot"), "bot")
	if !ok {
		return apiError(w, http.StatusNotFound, "Not Found", 0), "not a bot path"
	}
	if f.token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(f.token)) != 1 {
		return apiError(w, http.StatusUnauthorized, "Unauthorized", 0), "wrong bot token"
	}
	var chatID, text string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var req struct {
			ChatID json.RawMessage `json:"chat_id"`
			Text   string          `json:"text"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return apiError(w, http.StatusBadRequest, "Bad Request: can't parse JSON object", 0), "not JSON"
		}
		chatID, text = readChatID(req.ChatID), req.Text
	} else {
		form, _ := url.ParseQuery(string(body))
		chatID, text = form.Get("chat_id"), form.Get("text")
	}
	switch {
	case chatID == "":
		return apiError(w, http.StatusBadRequest, "Bad Request: chat_id is empty", 0), "no chat_id"
	case strings.TrimSpace(text) == "":
		return apiError(w, http.StatusBadRequest, "Bad Request: message text is empty", 0), "no text"
	case len([]rune(text)) > 4096:
		return apiError(w, http.StatusBadRequest, "Bad Request: message is too long", 0), "text over 4096 characters"
	case len(f.chats) > 0 && !f.chats[chatID]:
		return apiError(w, http.StatusBadRequest, "Bad Request: chat not found", 0), "unknown chat"
	}
	f.mu.Lock()
	m := Message{At: time.Now(), MessageID: int64(len(f.messages) + 1), ChatID: chatID, Text: text}
	f.messages = append(f.messages, m)
	f.mu.Unlock()
	chat := map[string]any{"id": chatID, "type": "private"}
	if n, err := strconv.ParseInt(chatID, 10, 64); err == nil {
		chat["id"] = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": map[string]any{
		"message_id": m.MessageID, "date": m.At.Unix(), "chat": chat, "text": text,
	}})
	return http.StatusOK, ""
}

// readChatID reads chat_id, which the Bot API takes as a number or a string
// (a numeric id or @channelusername).
func readChatID(raw json.RawMessage) string {
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

// apiError answers the Bot API's error format; retryAfter > 0 adds
// parameters.retry_after.
func apiError(w http.ResponseWriter, status int, description string, retryAfter int) int {
	answer := map[string]any{"ok": false, "error_code": status, "description": description}
	if retryAfter > 0 {
		answer["parameters"] = map[string]int{"retry_after": retryAfter}
	}
	writeJSON(w, status, answer)
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
