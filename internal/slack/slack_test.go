package slack_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack"
	"github.com/errandhq/errand/internal/slack/slacktest"
)

const hook = "https://hooks.slack.com/services/T000/B000/alice-secret"

// fakeSlack is the fake webhooks, with the sandbox's fault injection.
type fakeSlack struct {
	*slacktest.Fake
	*sandbox.Sandbox
}

// fake starts a fake Slack that knows alice's webhook.
func fake(t *testing.T) (fakeSlack, *slack.Client) {
	t.Helper()
	f := slacktest.New(hook)
	sb := fakeSlack{f, sandbox.Of(f)}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	c := slack.New(srv.URL, 5*time.Second)
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
	if strings.Contains(err.Error(), "alice-secret") {
		t.Fatalf("the error shows the webhook's secret path: %v", err)
	}
	return wait
}

func TestPostDeliversToTheWebhookPath(t *testing.T) {
	sb, c := fake(t)
	if err := c.Post(context.Background(), hook, "New customer: Ada"); err != nil {
		t.Fatal(err)
	}
	msgs := sb.Messages()
	if len(msgs) != 1 || msgs[0].Hook != "/services/T000/B000/alice-secret" || msgs[0].Text != "New customer: Ada" {
		t.Fatalf("the fake received %+v", msgs)
	}
}

func TestThrottledWaitsAsRetryAfterSays(t *testing.T) {
	sb, c := fake(t)
	sb.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 429, RetryAfter: 7, Count: 1})
	if wait := wantClass(t, c.Post(context.Background(), hook, "hi"), errand.Throttled); wait != 7*time.Second {
		t.Fatalf("wait %s, want the 7s Retry-After asked for", wait)
	}
	if err := c.Post(context.Background(), hook, "hi"); err != nil {
		t.Fatalf("after the throttle: %v", err)
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	sb, c := fake(t)
	sb.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 500, Count: 1})
	wantClass(t, c.Post(context.Background(), hook, "hi"), errand.Transient)
}

func TestRefusalsArePermanent(t *testing.T) {
	sb, c := fake(t)
	for name, tc := range map[string]struct {
		hook, text, code string
	}{
		"unknown webhook": {"https://hooks.slack.com/services/T000/B000/nobody", "hi", "no_service"},
		"no text":         {hook, " ", "no_text"},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Post(context.Background(), tc.hook, tc.text)
			wantClass(t, err, errand.Permanent)
			if !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("the error does not name Slack's code %q: %v", tc.code, err)
			}
		})
	}
	sb.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 410, Count: 1})
	wantClass(t, c.Post(context.Background(), hook, "hi"), errand.Permanent)
	if n := len(sb.Messages()); n != 0 {
		t.Fatalf("%d messages accepted", n)
	}
}

func TestNetworkErrorHidesTheWebhookPath(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	c := slack.New("", time.Second)
	err := c.Post(context.Background(), url+"/services/T000/B000/alice-secret", "hi")
	wantClass(t, err, errand.Transient)
	if !strings.Contains(err.Error(), "/services/…") {
		t.Fatalf("the error should say where it went, without the secret: %v", err)
	}
}

func TestEscapeDisarmsMentions(t *testing.T) {
	if got := slack.Escape("<!channel> Tom & Jerry"); got != "&lt;!channel&gt; Tom &amp; Jerry" {
		t.Fatalf("Escape: %q", got)
	}
}
