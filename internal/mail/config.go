package mail

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Config is the [smtp] table: the server errand sends every email through.
type Config struct {
	Host     string `koanf:"host"`
	Port     int    `koanf:"port"`
	Username string `koanf:"username"` // empty = no AUTH
	Password string `koanf:"password"`
	// TLS is none, starttls or tls (implicit TLS, e.g. port 465).
	TLS     string        `koanf:"tls"`
	From    string        `koanf:"from"` // its display name is the shop's name in emails
	Timeout time.Duration `koanf:"timeout"`
	// TemplatesDir names a directory whose files replace the built-in
	// templates one by one.
	TemplatesDir string `koanf:"templates_dir"`
}

// DefaultConfig is a local mail catcher on port 1025, without TLS.
func DefaultConfig() Config {
	return Config{Host: "127.0.0.1", Port: 1025, TLS: "none", From: "errand <errand@localhost>", Timeout: 15 * time.Second}
}

// Validate says, in one line naming each key, what would keep every email
// from going out. Every errand process that sends email needs it to pass; the
// default passes.
func (c Config) Validate() error {
	var bad []string
	if strings.TrimSpace(c.Host) == "" {
		bad = append(bad, "smtp.host: must be set")
	}
	if c.Port < 1 || c.Port > 65535 {
		bad = append(bad, fmt.Sprintf("smtp.port: must be a port number (got %d)", c.Port))
	}
	switch c.TLS {
	case "none", "starttls", "tls":
	default:
		bad = append(bad, fmt.Sprintf("smtp.tls: must be one of none, starttls, tls (got %q)", c.TLS))
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		bad = append(bad, fmt.Sprintf("smtp.from: must be an email address (got %q)", c.From))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
