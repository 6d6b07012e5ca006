package shopify

import (
	"errors"
	"strings"

	"github.com/errandhq/errand/internal/outbound"
)

// DefaultAPIVersion is the Admin API version errand is written against.
const DefaultAPIVersion = "2025-07"

// Config is the [shopify] table: the shop errand updates, and the secret its
// webhooks are signed with.
type Config struct {
	Shop        string `koanf:"shop"` // your-shop.myshopify.com
	AccessToken string `koanf:"access_token"`
	APIVersion  string `koanf:"api_version"`
	// BaseURL replaces https://<shop>, to point errand at a sandbox.
	BaseURL string `koanf:"base_url"`
	// WebhookSecret signs every webhook topic (VerifyWebhook); `errand
	// serve` refuses every webhook without it.
	WebhookSecret string `koanf:"webhook_secret"`
}

// DefaultConfig is no shop, at DefaultAPIVersion.
func DefaultConfig() Config { return Config{APIVersion: DefaultAPIVersion} }

// Validate says, in one line naming each key, what keeps a client of c from
// calling the Admin API. The webhook secret is not needed for that and is not
// checked: the webhook answers 401 while it is empty.
func (c Config) Validate() error {
	var bad []string
	switch {
	case c.BaseURL != "":
		if why := outbound.CheckBaseURL(c.BaseURL); why != "" {
			bad = append(bad, "shopify.base_url: "+why)
		}
	case c.Shop == "":
		bad = append(bad, "shopify.shop (or shopify.base_url): must be set")
	case strings.ContainsAny(c.Shop, "/:@ "):
		bad = append(bad, "shopify.shop: must be the shop's host name, e.g. your-shop.myshopify.com")
	}
	if c.AccessToken == "" {
		bad = append(bad, "shopify.access_token: must be set")
	}
	if c.APIVersion == "" {
		bad = append(bad, "shopify.api_version: must be set")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// baseURL is where the Admin API of c's shop is.
func (c Config) baseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return "https://" + c.Shop
}
