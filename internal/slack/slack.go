// Package slack posts messages to Slack incoming webhooks: POST the webhook
// URL with {"text": "..."}; Slack answers 200 "ok", 429 with Retry-After when
// it throttles, and a plain-text code (invalid_payload, no_service,
// channel_not_found, no_active_hooks, action_prohibited, …) with 400, 403,
// 404 or 410 when the message can never be delivered.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/go-resty/resty/v2"
)

// throttleFallback is the wait when a 429 comes without Retry-After, which
// Slack documents it always sends.
const throttleFallback = 30 * time.Second

// Client posts to incoming webhooks.
type Client struct {
	rc *resty.Client
	// base, when set, replaces the scheme and host of every webhook URL (a
	// sandbox); the webhook's path is kept.
	base string
	gate outbound.Gate // [limits.slack]; nil lets every call go
}

// New returns a client. base is notify.base_url: empty to call the webhook
// URLs as they are.
func New(base string, timeout time.Duration) *Client {
	return &Client{rc: outbound.New(base, timeout), base: strings.TrimRight(base, "/")}
}

// WithGate makes every call ask g first ([limits.slack]) and tell it the
// outcome; it returns c.
func (c *Client) WithGate(g outbound.Gate) *Client { c.gate = g; return c }

// Post sends text to the webhook, once the gate lets it. Errors carry their
// class and never the webhook's path, which is its secret.
func (c *Client) Post(ctx context.Context, webhookURL, text string) error {
	return outbound.Call(ctx, c.gate, "slack", func() error { return c.post(ctx, webhookURL, text) })
}

func (c *Client) post(ctx context.Context, webhookURL, text string) error {
	u, err := url.Parse(webhookURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return errand.Permanentf("slack: post message: the webhook URL is not an absolute URL")
	}
	target := webhookURL
	if c.base != "" {
		// The base URL was given to the resty client; only the path goes here.
		target = u.EscapedPath()
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	resp, err := c.rc.R().
		SetContext(ctx).
		SetBody(map[string]string{"text": text}).
		Post(target)
	if err = outbound.Check("slack", "post message", resp, redact(err, c.display(u)), throttleFallback); err != nil {
		return err
	}
	if body := strings.TrimSpace(string(resp.Body())); body != "ok" {
		// Something other than Slack answered (a proxy, a captive portal): the
		// message may not have arrived, so try again later.
		return errand.TransientError(fmt.Errorf("slack: post message: HTTP %d with %q instead of ok", resp.StatusCode(), shorten(body, 100)))
	}
	return nil
}

// display is the webhook as errors may show it: where it points, without the
// path that authorises posting.
func (c *Client) display(u *url.URL) string {
	host := u.Scheme + "://" + u.Host
	if c.base != "" {
		host = c.base
	}
	return host + "/services/…"
}

// redact replaces the URL that net/http quotes in its errors (it carries the
// webhook's secret path) with shown.
func redact(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	return err
}

// Escape makes s safe inside a message's text: Slack reads <…> as links and
// mentions (<!channel>), so a customer's name must not carry them.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
