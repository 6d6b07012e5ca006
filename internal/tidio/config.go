package tidio

import (
	"errors"
	"strings"

	"github.com/errandhq/errand/internal/outbound"
)

// Config is the [crm] table: the Tidio project errand keeps contacts in.
type Config struct {
	BaseURL string `koanf:"base_url"` // Tidio's OpenAPI, or a sandbox
	// ClientID and ClientSecret are the project's OpenAPI credentials
	// (Tidio: Settings → Developer → OpenAPI).
	ClientID     string `koanf:"client_id"`
	ClientSecret string `koanf:"client_secret"`
}

// DefaultConfig points at Tidio, without credentials.
func DefaultConfig() Config { return Config{BaseURL: DefaultBaseURL} }

// Validate says, in one line naming each key, what keeps a client of c from
// reaching Tidio. The default does not pass: errand runs without a CRM until
// a job needs one.
func (c Config) Validate() error {
	var bad []string
	if c.BaseURL != "" {
		if why := outbound.CheckBaseURL(c.BaseURL); why != "" {
			bad = append(bad, "crm.base_url: "+why)
		}
	}
	if c.ClientID == "" {
		bad = append(bad, "crm.client_id: must be set")
	}
	if c.ClientSecret == "" {
		bad = append(bad, "crm.client_secret: must be set")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
