package fulfillment

import (
	"errors"
	"strings"

	"github.com/errandhq/errand/internal/outbound"
)

// Config is the [fulfillment] table: the gateway errand pushes paid orders to,
// and the secret its tracking callbacks are signed with.
type Config struct {
	BaseURL string `koanf:"base_url"`
	// AppKey and AppSecret identify errand to the gateway; AppSecret signs
	// every request (Sign).
	AppKey    string `koanf:"app_key"`
	AppSecret string `koanf:"app_secret"`
	// CallbackSecret signs the platform's tracking callbacks to errand
	// (VerifyCallback); `errand serve` refuses every callback without it.
	CallbackSecret string `koanf:"callback_secret"`
}

// DefaultConfig is an unconfigured gateway: there is no public default.
func DefaultConfig() Config { return Config{} }

// Validate says, in one line naming each key, what keeps a client of c from
// pushing orders. The callback secret is not needed for that and is not
// checked: the callback endpoint answers 401 while it is empty.
func (c Config) Validate() error {
	var bad []string
	if c.BaseURL == "" {
		bad = append(bad, "fulfillment.base_url: must be set")
	} else if why := outbound.CheckBaseURL(c.BaseURL); why != "" {
		bad = append(bad, "fulfillment.base_url: "+why)
	}
	if c.AppKey == "" {
		bad = append(bad, "fulfillment.app_key: must be set")
	}
	if c.AppSecret == "" {
		bad = append(bad, "fulfillment.app_secret: must be set")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
