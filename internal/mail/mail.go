// Package mail sends errand's emails over SMTP (go-mail) from templates: each
// email is a text and an HTML part rendered from embedded templates, which a
// directory named in smtp.templates_dir may override file by file.
package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/textproto"
	"os"
	"strings"
	texttemplate "text/template"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	gomail "github.com/wneessen/go-mail"
)

//go:embed templates/*
var embedded embed.FS

// funcs are the helpers templates may use.
var funcs = map[string]any{"inc": func(i int) int { return i + 1 }}

// Mailer renders and sends emails.
type Mailer struct {
	cfg       Config
	templates fs.FS
	gate      outbound.Gate // [limits.smtp]; nil lets every email go
}

// WithGate makes every send ask g first ([limits.smtp]) and tell it the
// outcome; it returns m.
func (m *Mailer) WithGate(g outbound.Gate) *Mailer { m.gate = g; return m }

// New returns a mailer for the [smtp] settings.
func New(cfg Config) (*Mailer, error) {
	sub, _ := fs.Sub(embedded, "templates")
	m := &Mailer{cfg: cfg, templates: sub}
	if cfg.TemplatesDir != "" {
		st, err := os.Stat(cfg.TemplatesDir)
		if err != nil || !st.IsDir() {
			return nil, fmt.Errorf("mail: smtp.templates_dir %q is not a directory", cfg.TemplatesDir)
		}
		m.templates = overlay{top: os.DirFS(cfg.TemplatesDir), base: sub}
	}
	return m, nil
}

// overlay reads a file from top, else from base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

// Message is one email.
type Message struct {
	To      []string
	Subject string
	Text    string
	HTML    string
}

// Render builds the message named name (name.txt and name.html; the text
// template defines "subject") for data.
func (m *Mailer) Render(name string, data any) (Message, error) {
	txtSrc, err := fs.ReadFile(m.templates, name+".txt")
	if err != nil {
		return Message{}, fmt.Errorf("mail: template %s.txt: %w", name, err)
	}
	htmlSrc, err := fs.ReadFile(m.templates, name+".html")
	if err != nil {
		return Message{}, fmt.Errorf("mail: template %s.html: %w", name, err)
	}
	tt, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(txtSrc))
	if err != nil {
		return Message{}, fmt.Errorf("mail: template %s.txt: %w", name, err)
	}
	ht, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(htmlSrc))
	if err != nil {
		return Message{}, fmt.Errorf("mail: template %s.html: %w", name, err)
	}
	var subj, txt, html bytes.Buffer
	if t := tt.Lookup("subject"); t != nil {
		if err := t.Execute(&subj, data); err != nil {
			return Message{}, fmt.Errorf("mail: render %s subject: %w", name, err)
		}
	}
	if err := tt.Execute(&txt, data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s.txt: %w", name, err)
	}
	if err := ht.Execute(&html, data); err != nil {
		return Message{}, fmt.Errorf("mail: render %s.html: %w", name, err)
	}
	return Message{Subject: strings.TrimSpace(subj.String()), Text: strings.TrimSpace(txt.String()) + "\n", HTML: html.String()}, nil
}

// Send delivers msg once the gate lets it. Its error carries a class: SMTP
// 5xx answers are permanent, 4xx answers and network errors transient, the
// gate's refusal throttled.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	return outbound.Call(ctx, m.gate, "smtp", func() error { return m.send(ctx, msg) })
}

func (m *Mailer) send(ctx context.Context, msg Message) error {
	gm := gomail.NewMsg()
	if err := gm.From(m.cfg.From); err != nil {
		return errand.Permanentf("mail: from %q: %w", m.cfg.From, err)
	}
	if err := gm.To(msg.To...); err != nil {
		return errand.Permanentf("mail: to %v: %w", msg.To, err)
	}
	gm.Subject(msg.Subject)
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)

	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	c, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return errand.Permanentf("mail: client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		return classify(fmt.Errorf("mail: send to %s via %s:%d: %w", strings.Join(msg.To, ", "), m.cfg.Host, m.cfg.Port, err))
	}
	return nil
}

// classify gives an SMTP error its class from the server's reply code.
func classify(err error) error {
	code := 0
	var se *gomail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se) && se.ErrorCode() > 0:
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	case errors.As(err, &se) && !se.IsTemp() && se.Reason != gomail.ErrConnCheck:
		code = 0
	}
	if code >= 500 && code < 600 {
		return errand.PermanentError(err)
	}
	return errand.TransientError(err)
}
