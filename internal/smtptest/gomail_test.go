package smtptest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/errandhq/errand/internal/smtptest"
)

// The application sends with go-mail; these tests pin that its messages and
// its view of the server's failures come through as expected.

func gomailClient(t *testing.T, srv *smtptest.Server, opts ...gomail.Option) *gomail.Client {
	t.Helper()
	opts = append([]gomail.Option{
		gomail.WithPort(srv.Port()),
		gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithTimeout(5 * time.Second),
	}, opts...)
	c, err := gomail.NewClient(srv.Host(), opts...)
	if err != nil {
		t.Fatalf("go-mail client: %v", err)
	}
	return c
}

func welcomeMsg(t *testing.T, enc gomail.Encoding) *gomail.Msg {
	t.Helper()
	m := gomail.NewMsg(gomail.WithEncoding(enc))
	if err := m.From("Shop <shop@example.com>"); err != nil {
		t.Fatal(err)
	}
	if err := m.To("ada@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Subject("Willkommen, Ada — schön, dass du da bist")
	m.SetBodyString(gomail.TypeTextPlain, "Hallo Ada,\nwillkommen bei uns.")
	m.AddAlternativeString(gomail.TypeTextHTML, "<p>Hallo <b>Ada</b>,</p><p>willkommen bei uns.</p>")
	if err := m.AttachReader("terms.txt", strings.NewReader("the terms")); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGoMailMessageIsDecoded(t *testing.T) {
	for _, enc := range []gomail.Encoding{gomail.EncodingQP, gomail.EncodingB64} {
		t.Run(enc.String(), func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.RequireAuth("errand", "s3cret")
			c := gomailClient(t, srv,
				gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
				gomail.WithUsername("errand"),
				gomail.WithPassword("s3cret"))

			if err := c.DialAndSendWithContext(context.Background(), welcomeMsg(t, enc)); err != nil {
				t.Fatalf("send: %v", err)
			}

			m := srv.WaitFor(t, 1, 5*time.Second)[0]
			if m.ParseErr != nil {
				t.Fatalf("ParseErr: %v\n%s", m.ParseErr, m.Raw)
			}
			if m.Subject != "Willkommen, Ada — schön, dass du da bist" {
				t.Errorf("Subject = %q", m.Subject)
			}
			if m.Text != "Hallo Ada,\nwillkommen bei uns." {
				t.Errorf("Text = %q\n%s", m.Text, m.Raw)
			}
			if m.HTML != "<p>Hallo <b>Ada</b>,</p><p>willkommen bei uns.</p>" {
				t.Errorf("HTML = %q\n%s", m.HTML, m.Raw)
			}
			if m.From != "shop@example.com" || len(m.To) != 1 || m.To[0] != "ada@example.com" {
				t.Errorf("envelope = %q -> %q", m.From, m.To)
			}
		})
	}
}

func TestGoMailSeesRejectionClass(t *testing.T) {
	tests := []struct {
		name     string
		reject   func(*smtptest.Server)
		wantCode int
		wantTemp bool
	}{
		{"permanent", func(s *smtptest.Server) { s.RejectPermanently(550, "mailbox unavailable") }, 550, false},
		{"temporary", func(s *smtptest.Server) { s.RejectTemporarily(451, "try again later") }, 451, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			tt.reject(srv)
			err := gomailClient(t, srv).DialAndSend(welcomeMsg(t, gomail.EncodingQP))
			var sendErr *gomail.SendError
			if !errors.As(err, &sendErr) {
				t.Fatalf("err = %v (%T), want a *gomail.SendError", err, err)
			}
			if sendErr.ErrorCode() != tt.wantCode || sendErr.IsTemp() != tt.wantTemp {
				t.Errorf("ErrorCode, IsTemp = %d, %v; want %d, %v (%v)",
					sendErr.ErrorCode(), sendErr.IsTemp(), tt.wantCode, tt.wantTemp, err)
			}
			if srv.Attempts() != 1 {
				t.Errorf("Attempts() = %d, want 1", srv.Attempts())
			}
		})
	}
}

func TestGoMailSeesOutage(t *testing.T) {
	srv := smtptest.Start(t)
	srv.Down()
	err := gomailClient(t, srv).DialAndSend(welcomeMsg(t, gomail.EncodingQP))
	if err == nil {
		t.Fatal("send succeeded while the server is down")
	}
	srv.Up()
	if err := gomailClient(t, srv).DialAndSend(welcomeMsg(t, gomail.EncodingQP)); err != nil {
		t.Fatalf("send after Up: %v", err)
	}
	srv.WaitFor(t, 1, 5*time.Second)
}
