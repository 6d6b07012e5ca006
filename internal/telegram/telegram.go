// Package telegram sends messages through the Telegram Bot API:
// POST {base}/bot<token>/sendMessage with {"chat_id","text"}. Every answer is
// {"ok":true,"result":{…}} or {"ok":false,"error_code":N,"description":"…"};
// a 429 carries parameters.retry_after, the seconds to wait.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/go-resty/resty/v2"
)

// DefaultBaseURL is the Bot API's address.
const DefaultBaseURL = "https://api.telegram.org"

// throttleFallback is the wait when a 429 names none in its body or headers.
const throttleFallback = 30 * time.Second

// Client calls the Bot API as one bot.
type Client struct {
	rc    *resty.Client
	base  string
	token string
	gate  outbound.Gate // [limits.telegram]; nil lets every call go
}

// New returns a client for the bot with token. base is notify.base_url, or
// empty for DefaultBaseURL.
func New(base, token string, timeout time.Duration) *Client {
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	return &Client{rc: outbound.New(base, timeout), base: base, token: token}
}

// answer is every Bot API response.
type answer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// Message is the part of a sent message errand reads.
type Message struct {
	MessageID int64 `json:"message_id"`
}

// WithGate makes every call ask g first ([limits.telegram]) and tell it the
// outcome; it returns c.
func (c *Client) WithGate(g outbound.Gate) *Client { c.gate = g; return c }

// SendMessage sends text, as plain text, to chatID, once the gate lets it.
// Errors carry their class and never the bot token.
func (c *Client) SendMessage(ctx context.Context, chatID, text string) (Message, error) {
	var m Message
	err := outbound.Call(ctx, c.gate, "telegram", func() (err error) {
		m, err = c.sendMessage(ctx, chatID, text)
		return err
	})
	return m, err
}

func (c *Client) sendMessage(ctx context.Context, chatID, text string) (Message, error) {
	const op = "send message"
	if c.token == "" {
		return Message{}, errand.Permanentf("telegram: %s: no bot token (notify.telegram_bot_token)", op)
	}
	resp, err := c.rc.R().
		SetContext(ctx).
		SetBody(map[string]string{"chat_id": chatID, "text": text}).
		Post("/bot" + c.token + "/sendMessage")
	if err != nil {
		return Message{}, outbound.Check("telegram", op, resp, c.redact(err), 0)
	}
	var a answer
	jsonErr := json.Unmarshal(resp.Body(), &a)
	if resp.IsSuccess() && jsonErr == nil && a.OK {
		var m Message
		_ = json.Unmarshal(a.Result, &m)
		return m, nil
	}
	status := resp.StatusCode()
	if resp.IsSuccess() {
		if jsonErr != nil || a.ErrorCode == 0 {
			// Not the Bot API's answer: the message may not have gone out.
			return Message{}, errand.TransientError(fmt.Errorf("telegram: %s: HTTP %d without a Bot API answer", op, status))
		}
		status = a.ErrorCode
	}
	se := &outbound.StatusError{Service: "telegram", Op: op, Status: status, Body: string(resp.Body())}
	if jsonErr == nil && a.Description != "" {
		se.Body = a.Description
	}
	se.Body = strings.ReplaceAll(se.Body, c.token, "<token>")
	if status == 429 && a.Parameters.RetryAfter > 0 {
		return Message{}, errand.ThrottledError(se, time.Duration(a.Parameters.RetryAfter)*time.Second)
	}
	return Message{}, outbound.Classify(se, resp.Header(), throttleFallback)
}

// redact replaces the URL net/http quotes in its errors, which carries the
// bot token, with the same URL without it.
func (c *Client) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: c.base + "/bot<token>/sendMessage", Err: ue.Err}
	}
	if msg := err.Error(); strings.Contains(msg, c.token) {
		return errors.New(strings.ReplaceAll(msg, c.token, "<token>"))
	}
	return err
}
