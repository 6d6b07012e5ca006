package mail

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("the default: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no host", func(c *Config) { c.Host = " " }, "smtp.host: must be set"},
		{"port 0", func(c *Config) { c.Port = 0 }, "smtp.port: must be a port number (got 0)"},
		{"port too big", func(c *Config) { c.Port = 70000 }, "smtp.port: must be a port number (got 70000)"},
		{"unknown tls", func(c *Config) { c.TLS = "ssl" }, `smtp.tls: must be one of none, starttls, tls (got "ssl")`},
		{"no from", func(c *Config) { c.From = "" }, `smtp.from: must be an email address (got "")`},
		{"from not an address", func(c *Config) { c.From = "Acme Shop" }, `smtp.from: must be an email address (got "Acme Shop")`},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Everything wrong at once is still one line, naming each key.
	err := Config{TLS: "ssl"}.Validate()
	if err == nil || strings.Contains(err.Error(), "\n") || strings.Count(err.Error(), "smtp.") != 4 {
		t.Fatalf("%q", err)
	}
	// The password never shows, whatever else is wrong.
	c := DefaultConfig()
	c.Port, c.Password = 0, "hunter2-smtp"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2-smtp") {
		t.Fatalf("%v", err)
	}
}
