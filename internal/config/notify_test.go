package config

import (
	"strings"
	"testing"
)

func TestNotifyValidate(t *testing.T) {
	slack := Notify{Kind: "slack", DefaultRep: "alice", Reps: map[string]Rep{
		"alice": {Name: "Alice", SlackWebhookURL: "https://hooks.slack.com/services/T0/B0/alice-hook-secret"},
	}}
	if err := slack.Validate(); err != nil {
		t.Fatalf("a complete Slack config: %v", err)
	}
	telegram := Notify{Kind: "telegram", TelegramBotToken: "123:bot-token-secret", Reps: map[string]Rep{"alice": {TelegramChatID: "1001"}}}
	if err := telegram.Validate(); err != nil {
		t.Fatalf("a complete Telegram config: %v", err)
	}
	for _, tc := range []struct {
		name string
		n    Notify
		want string
	}{
		{"the default", DefaultNotify(), "notify.reps: at least one rep must be configured ([notify.reps.<id>])"},
		{"unknown kind", Notify{Kind: "email", Reps: slack.Reps}, `notify.kind: must be slack or telegram (got "email")`},
		{"telegram without a token", Notify{Kind: "telegram", Reps: telegram.Reps}, "notify.telegram_bot_token: must be set (notify.kind is telegram)"},
		{"a rep without a chat", Notify{Kind: "telegram", TelegramBotToken: "t", Reps: slack.Reps}, "notify.reps.alice.telegram_chat_id: must be set (notify.kind is telegram)"},
		{"a rep without a webhook", Notify{Kind: "slack", Reps: telegram.Reps}, "notify.reps.alice.slack_webhook_url: must be set (notify.kind is slack)"},
		{"a webhook that is no URL", Notify{Kind: "slack", Reps: map[string]Rep{"bob": {SlackWebhookURL: "hooks.slack.com/services/bob-hook-secret"}}},
			"notify.reps.bob.slack_webhook_url: must be an http or https URL with a host"},
		{"an unknown default rep", Notify{Kind: "slack", DefaultRep: "carol", Reps: slack.Reps}, `notify.default_rep: "carol" is not in [notify.reps]`},
		{"a bad base_url", Notify{Kind: "slack", BaseURL: "localhost:8090", Reps: slack.Reps}, `notify.base_url: must be an http or https URL (got "localhost:8090")`},
	} {
		err := tc.n.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("%s: shows a secret or is not one line: %q", tc.name, err)
		}
	}
}

// Loading refuses only what is wrong whatever runs: an unknown notify.kind,
// not a missing rep; the shipped defaults start every command.
func TestLoadChecksOnlyTheNotifyKind(t *testing.T) {
	if _, err := Load(writeFile(t, "[notify]\nkind = \"telegram\"\n"), true, nil, nil); err != nil {
		t.Fatalf("telegram without token or reps must still load: %v", err)
	}
	if _, err := Load(writeFile(t, "[notify]\nkind = \"pager\"\n"), true, nil, nil); err == nil || !strings.Contains(err.Error(), "notify.kind") {
		t.Fatalf("an unknown kind: %v", err)
	}
	if _, err := Load(writeFile(t, "[crm]\nclient_id = \"\"\n[shopify]\nshop = \"\"\n"), true, nil, nil); err != nil {
		t.Fatalf("an empty CRM and shop must still load: %v", err)
	}
}
