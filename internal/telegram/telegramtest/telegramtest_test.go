package telegramtest_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
)

func TestTelegramWireFormat(t *testing.T) {
	fake := telegramtest.New("123456:test-bot-token", "1001")
	sb := sandbox.Of(fake)
	post := func(path, body string) (int, string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		sb.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	send := "/bot123456:test-bot-token/sendMessage"
	if code, body := post("/bot123456:wrong/sendMessage", `{"chat_id":1001,"text":"hi"}`); code != 401 ||
		strings.TrimSpace(body) != `{"description":"Unauthorized","error_code":401,"ok":false}` {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	if code, body := post(send, `{"text":"hi"}`); code != 400 || !strings.Contains(body, "chat_id is empty") {
		t.Fatalf("no chat_id: %d %s", code, body)
	}
	if code, body := post(send, `{"chat_id":1002,"text":"hi"}`); code != 400 || !strings.Contains(body, "chat not found") {
		t.Fatalf("unknown chat: %d %s", code, body)
	}
	code, body := post(send, `{"chat_id":1001,"text":"hi"}`)
	if code != 200 || !strings.Contains(body, `"ok":true`) || !strings.Contains(body, `"message_id":1`) {
		t.Fatalf("send: %d %s", code, body)
	}
	if m := fake.Messages(); len(m) != 1 || m[0].ChatID != "1001" || m[0].Text != "hi" {
		t.Fatalf("messages: %+v", m)
	}
	sb.AddFault(sandbox.Fault{Service: telegramtest.Service, Throttle: true, Count: 1})
	if code, body := post(send, `{"chat_id":1001,"text":"hi"}`); code != 429 || !strings.Contains(body, `"parameters":{"retry_after":2}`) {
		t.Fatalf("throttled: %d %s", code, body)
	}
}

// Without a bot token configured, no token is right.
func TestTelegramWithoutTokenRefusesEveryCall(t *testing.T) {
	r := httptest.NewRequest("POST", "/bot/sendMessage", strings.NewReader(`{"chat_id":1,"text":"hi"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	sandbox.Of(telegramtest.New("")).Handler().ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
