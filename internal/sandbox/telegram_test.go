package sandbox

import (
	"strings"
	"testing"
)

func TestTelegramWireFormat(t *testing.T) {
	s, srv := wireServer(t, nil)
	send := srv.URL + "/bot123456:test-bot-token/sendMessage"
	if code, _, body := wireCall(t, "POST", srv.URL+"/bot123456:wrong/sendMessage", `{"chat_id":1,"text":"hi"}`); code != 401 ||
		strings.TrimSpace(body) != `{"description":"Unauthorized","error_code":401,"ok":false}` {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	if code, _, body := wireCall(t, "POST", send, `{"text":"hi"}`); code != 400 || !strings.Contains(body, "chat_id is empty") {
		t.Fatalf("no chat_id: %d %s", code, body)
	}
	code, _, body := wireCall(t, "POST", send, `{"chat_id":1001,"text":"hi"}`)
	if code != 200 || !strings.Contains(body, `"ok":true`) || !strings.Contains(body, `"message_id":1`) {
		t.Fatalf("send: %d %s", code, body)
	}
	if m := s.TelegramMessages(); len(m) != 1 || m[0].ChatID != "1001" || m[0].Text != "hi" {
		t.Fatalf("messages: %+v", m)
	}
	s.AddFault(Fault{Service: Telegram, Throttle: true, Count: 1})
	if code, _, body := wireCall(t, "POST", send, `{"chat_id":1001,"text":"hi"}`); code != 429 || !strings.Contains(body, `"parameters":{"retry_after":2}`) {
		t.Fatalf("throttled: %d %s", code, body)
	}
}
