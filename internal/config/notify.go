package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/errandhq/errand/internal/outbound"
)

// Notify is the [notify] table: which sales rep hears of a new customer, and
// over which channel. It is errand's own routing across two services (Slack
// incoming webhooks, a Telegram bot), so it lives here rather than in either
// service's package; internal/slack and internal/telegram take the parts they
// need.
type Notify struct {
	Kind       string         `koanf:"kind"`        // slack | telegram
	DefaultRep string         `koanf:"default_rep"` // rep id used when a registration names none
	Reps       map[string]Rep `koanf:"reps"`
	// TelegramBotToken is the bot every Telegram message goes out as.
	TelegramBotToken string `koanf:"telegram_bot_token"`
	// BaseURL replaces the Slack and Telegram API addresses (a sandbox).
	BaseURL string `koanf:"base_url"`
}

// Rep is one sales rep, [notify.reps.<id>].
type Rep struct {
	Name            string `koanf:"name"`
	SlackWebhookURL string `koanf:"slack_webhook_url"`
	TelegramChatID  string `koanf:"telegram_chat_id"`
}

// DefaultNotify is Slack, with no reps.
func DefaultNotify() Notify { return Notify{Kind: "slack"} }

// checkKind is the part of Validate every command needs: a kind errand
// does not know is a typo whatever runs.
func (n Notify) checkKind() error {
	switch n.Kind {
	case "slack", "telegram":
		return nil
	}
	return fmt.Errorf("notify.kind: must be slack or telegram (got %q)", n.Kind)
}

// Validate says, in one line naming each key, what keeps a rep from hearing
// of a new customer: the kind, the bot token for Telegram, at least one rep,
// every rep's address on the channel of notify.kind, and a default rep that
// exists. The default does not pass: errand runs without notifications
// until a job needs them.
func (n Notify) Validate() error {
	var bad []string
	if err := n.checkKind(); err != nil {
		bad = append(bad, err.Error())
	}
	if n.BaseURL != "" {
		if why := outbound.CheckBaseURL(n.BaseURL); why != "" {
			bad = append(bad, "notify.base_url: "+why)
		}
	}
	if n.Kind == "telegram" && n.TelegramBotToken == "" {
		bad = append(bad, "notify.telegram_bot_token: must be set (notify.kind is telegram)")
	}
	if len(n.Reps) == 0 {
		bad = append(bad, "notify.reps: at least one rep must be configured ([notify.reps.<id>])")
	}
	ids := make([]string, 0, len(n.Reps))
	for id := range n.Reps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		rep, key := n.Reps[id], "notify.reps."+id
		switch n.Kind {
		case "slack":
			if rep.SlackWebhookURL == "" {
				bad = append(bad, key+".slack_webhook_url: must be set (notify.kind is slack)")
			} else if why := outbound.CheckBaseURL(rep.SlackWebhookURL); why != "" {
				// Never the URL itself: its path is the webhook's secret.
				bad = append(bad, key+".slack_webhook_url: must be an http or https URL with a host")
			}
		case "telegram":
			if rep.TelegramChatID == "" {
				bad = append(bad, key+".telegram_chat_id: must be set (notify.kind is telegram)")
			}
		}
	}
	if n.DefaultRep != "" {
		if _, ok := n.Reps[n.DefaultRep]; !ok {
			bad = append(bad, fmt.Sprintf("notify.default_rep: %q is not in [notify.reps]", n.DefaultRep))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
