package telegram_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/telegram"
	"github.com/errandhq/errand/internal/telegram/telegramtest"
)

const token = "123456:test-bot-token"

// fakeBot is the fake Bot API, with the sandbox's fault injection.
type fakeBot struct {
	*telegramtest.Fake
	*sandbox.Sandbox
}

// fake starts a fake Bot API for the bot token, knowing chat 1001; the client
// uses clientToken.
func fake(t *testing.T, clientToken string) (fakeBot, *telegram.Client) {
	t.Helper()
	f := telegramtest.New(token, "1001")
	sb := fakeBot{f, sandbox.Of(f)}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	c := telegram.New(srv.URL, clientToken, 5*time.Second)
	return sb, c
}

func wantClass(t *testing.T, err error, want errand.Class) time.Duration {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want a %s one", want)
	}
	class, wait := errand.ClassOf(err)
	if class != want {
		t.Fatalf("class %s, want %s: %v", class, want, err)
	}
	if strings.Contains(err.Error(), "test-bot-token") || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("the error shows the bot token: %v", err)
	}
	return wait
}

func TestSendMessage(t *testing.T) {
	sb, c := fake(t, token)
	m, err := c.SendMessage(context.Background(), "1001", "New customer: Ada")
	if err != nil {
		t.Fatal(err)
	}
	msgs := sb.Messages()
	if len(msgs) != 1 || msgs[0].ChatID != "1001" || msgs[0].Text != "New customer: Ada" || m.MessageID != msgs[0].MessageID {
		t.Fatalf("sent %+v; the fake received %+v", m, msgs)
	}
}

func TestThrottledWaitsRetryAfterFromTheBody(t *testing.T) {
	sb, c := fake(t, token)
	sb.AddFault(sandbox.Fault{Service: telegramtest.Service, Throttle: true, Count: 1})
	_, err := c.SendMessage(context.Background(), "1001", "hi")
	if wait := wantClass(t, err, errand.Throttled); wait != telegramtest.RetryAfter*time.Second {
		t.Fatalf("wait %s, want parameters.retry_after = %ds", wait, telegramtest.RetryAfter)
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	sb, c := fake(t, token)
	sb.AddFault(sandbox.Fault{Service: telegramtest.Service, Status: 502, Count: 1})
	_, err := c.SendMessage(context.Background(), "1001", "hi")
	wantClass(t, err, errand.Transient)
}

func TestRefusalsArePermanent(t *testing.T) {
	for name, tc := range map[string]struct {
		token, chat, says string
	}{
		"wrong token":     {"123456:wrong-token", "1001", "HTTP 401: Unauthorized"},
		"unknown chat":    {token, "999", "HTTP 400: Bad Request: chat not found"},
		"empty chat id":   {token, "", "chat_id is empty"},
		"no token at all": {"", "1001", "no bot token"},
	} {
		t.Run(name, func(t *testing.T) {
			sb, c := fake(t, tc.token)
			_, err := c.SendMessage(context.Background(), tc.chat, "hi")
			wantClass(t, err, errand.Permanent)
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("the error should say %q: %v", tc.says, err)
			}
			if n := len(sb.Messages()); n != 0 {
				t.Fatalf("%d messages accepted", n)
			}
		})
	}
}

func TestNetworkErrorHidesTheToken(t *testing.T) {
	srv := httptest.NewServer(nil)
	base := srv.URL
	srv.Close()
	_, err := telegram.New(base, token, time.Second).SendMessage(context.Background(), "1001", "hi")
	wantClass(t, err, errand.Transient)
	if !strings.Contains(err.Error(), "/bot<token>/sendMessage") {
		t.Fatalf("the error should say where it went, without the token: %v", err)
	}
}
