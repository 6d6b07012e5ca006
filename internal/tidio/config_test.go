package tidio_test

import (
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/tidio"
)

func TestConfigValidate(t *testing.T) {
	// errand starts without a CRM; a client of the default config could not
	// call Tidio, and says which keys to set.
	err := tidio.DefaultConfig().Validate()
	if err == nil || err.Error() != "crm.client_id: must be set; crm.client_secret: must be set" {
		t.Fatalf("the default: %v", err)
	}
	good := tidio.Config{BaseURL: tidio.DefaultBaseURL, ClientID: "id", ClientSecret: "tidio-secret"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a complete config: %v", err)
	}
	noBase := good
	noBase.BaseURL = "" // New falls back to Tidio's address
	if err := noBase.Validate(); err != nil {
		t.Fatalf("without base_url: %v", err)
	}
	for _, base := range []string{"api.tidio.com", "ftp://api.tidio.com", "https://", "http://[::1"} {
		c := good
		c.BaseURL = base
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "crm.base_url: ") || strings.Contains(err.Error(), "tidio-secret") {
			t.Errorf("base_url %q: %v", base, err)
		}
	}
	// A client is never built on settings that cannot work.
	if _, err := tidio.New(tidio.DefaultConfig(), 0); err == nil || !strings.Contains(err.Error(), "crm.client_id: must be set") {
		t.Errorf("New with the default config: %v", err)
	}
}
