package smtptest_test

import (
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/smtptest"
)

// send delivers raw with net/smtp, the way a plain Go client would.
func send(srv *smtptest.Server, auth smtp.Auth, from string, to []string, raw string) error {
	raw = strings.ReplaceAll(raw, "\n", "\r\n")
	return smtp.SendMail(srv.Addr(), auth, from, to, []byte(raw))
}

const simple = `From: Shop <shop@example.com>
To: Ada <ada@example.com>
Subject: =?UTF-8?Q?Welcome,_Ada_=E2=9C=93?=
Content-Type: text/plain; charset=utf-8

Hello Ada,
thanks for signing up.
`

func TestCapturesMessage(t *testing.T) {
	srv := smtptest.Start(t)
	if srv.Host() != "127.0.0.1" || srv.Port() == 0 {
		t.Fatalf("Host, Port = %q, %d", srv.Host(), srv.Port())
	}

	before := time.Now()
	if err := send(srv, nil, "shop@example.com", []string{"ada@example.com", "audit@example.com"}, simple); err != nil {
		t.Fatalf("send: %v", err)
	}

	msgs := srv.WaitFor(t, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.ParseErr != nil {
		t.Fatalf("ParseErr: %v", m.ParseErr)
	}
	if m.From != "shop@example.com" {
		t.Errorf("From = %q", m.From)
	}
	if got := strings.Join(m.To, ","); got != "ada@example.com,audit@example.com" {
		t.Errorf("To = %q", got)
	}
	if m.Subject != "Welcome, Ada ✓" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if m.Text != "Hello Ada,\nthanks for signing up.\n" {
		t.Errorf("Text = %q", m.Text)
	}
	if m.HTML != "" {
		t.Errorf("HTML = %q, want empty", m.HTML)
	}
	if m.Header.Get("To") != "Ada <ada@example.com>" {
		t.Errorf("Header To = %q", m.Header.Get("To"))
	}
	if !strings.Contains(string(m.Raw), "Subject: =?UTF-8?Q?Welcome") {
		t.Errorf("Raw does not hold the message as sent:\n%s", m.Raw)
	}
	if m.ReceivedAt.Before(before) || m.ReceivedAt.After(time.Now()) {
		t.Errorf("ReceivedAt = %v, not during the send", m.ReceivedAt)
	}
	if srv.Attempts() != 1 {
		t.Errorf("Attempts() = %d, want 1", srv.Attempts())
	}
}

// The layout a mail library produces for an HTML email with a text
// alternative and an attachment, each part in a different transfer encoding.
const nested = `From: shop@example.com
To: ada@example.com
Subject: plain subject
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe, Ada! This line is long enough that it has to be wrapped =
with a soft line break.
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: base64

PHA+R3LDvMOfZSwgPGI+QWRhPC9iPiE8L3A+
--inner--

--outer
Content-Type: text/plain; name="terms.txt"
Content-Disposition: attachment; filename="terms.txt"

not the body
--outer--
`

func TestDecodesNestedMultipart(t *testing.T) {
	srv := smtptest.Start(t)
	if err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, nested); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := srv.WaitFor(t, 1, 5*time.Second)[0]
	if m.ParseErr != nil {
		t.Fatalf("ParseErr: %v", m.ParseErr)
	}
	if want := "Grüße, Ada! This line is long enough that it has to be wrapped with a soft line break."; m.Text != want {
		t.Errorf("Text = %q, want %q", m.Text, want)
	}
	if want := "<p>Grüße, <b>Ada</b>!</p>"; m.HTML != want {
		t.Errorf("HTML = %q, want %q", m.HTML, want)
	}
	if m.Subject != "plain subject" {
		t.Errorf("Subject = %q", m.Subject)
	}
}

func TestUnparsableMessageIsStillCaptured(t *testing.T) {
	srv := smtptest.Start(t)
	raw := "Subject: broken\nContent-Type: multipart/mixed\n\nno boundary\n"
	if err := send(srv, nil, "a@example.com", []string{"b@example.com"}, raw); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := srv.WaitFor(t, 1, 5*time.Second)[0]
	if m.ParseErr == nil {
		t.Error("ParseErr = nil for a multipart without a boundary")
	}
	if m.Subject != "broken" || !strings.Contains(string(m.Raw), "no boundary") {
		t.Errorf("Subject = %q, Raw = %q", m.Subject, m.Raw)
	}
}

// smtpCode returns the reply code of a failed net/smtp call, or 0.
func smtpCode(err error) int {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code
	}
	return 0
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name   string
		reject func(*smtptest.Server)
		stage  smtptest.Stage
		code   int
	}{
		{"permanent at MAIL FROM", func(s *smtptest.Server) { s.RejectPermanently(550, "mailbox unavailable") }, smtptest.AtMail, 550},
		{"permanent at RCPT TO", func(s *smtptest.Server) { s.RejectPermanently(553, "no such user") }, smtptest.AtRcpt, 553},
		{"permanent at DATA", func(s *smtptest.Server) { s.RejectPermanently(554, "content rejected") }, smtptest.AtData, 554},
		{"temporary at MAIL FROM", func(s *smtptest.Server) { s.RejectTemporarily(451, "try again later") }, smtptest.AtMail, 451},
		{"temporary at DATA", func(s *smtptest.Server) { s.RejectTemporarily(452, "insufficient storage") }, smtptest.AtData, 452},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			srv.RejectAt(tt.stage)
			tt.reject(srv)

			for i := 1; i <= 2; i++ {
				err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple)
				if got := smtpCode(err); got != tt.code {
					t.Fatalf("send %d: err = %v (code %d), want code %d", i, err, got, tt.code)
				}
				if srv.Attempts() != i {
					t.Fatalf("Attempts() = %d after %d sends", srv.Attempts(), i)
				}
			}
			if n := len(srv.Messages()); n != 0 {
				t.Fatalf("captured %d rejected messages", n)
			}

			srv.Accept()
			if err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple); err != nil {
				t.Fatalf("send after Accept: %v", err)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Fatalf("captured %d messages after Accept, want 1", n)
			}
			if srv.Attempts() != 3 {
				t.Fatalf("Attempts() = %d, want 3", srv.Attempts())
			}
		})
	}
}

func TestRejectionMessageReachesClient(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RejectPermanently(550, "5.1.1 mailbox ada@example.com unavailable")
	err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple)
	if err == nil || !strings.Contains(err.Error(), "mailbox ada@example.com unavailable") {
		t.Fatalf("err = %v, want the rejection text", err)
	}
}

func TestDownAndUp(t *testing.T) {
	srv := smtptest.Start(t)
	port := srv.Port()

	srv.Down()
	srv.Down() // idempotent
	conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("dial succeeded while the server is down")
	}
	if err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple); err == nil {
		t.Fatal("send succeeded while the server is down")
	}
	if srv.Attempts() != 0 {
		t.Errorf("Attempts() = %d while down, want 0", srv.Attempts())
	}

	srv.Up()
	srv.Up() // idempotent
	if srv.Port() != port {
		t.Fatalf("port changed from %d to %d", port, srv.Port())
	}
	if err := send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple); err != nil {
		t.Fatalf("send after Up: %v", err)
	}
	srv.WaitFor(t, 1, 5*time.Second)
}

// Down also cuts connections that are already open, as a crashed server
// would.
func TestDownClosesOpenConnections(t *testing.T) {
	srv := smtptest.Start(t)
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	srv.Down()
	if err := c.Mail("shop@example.com"); err == nil {
		t.Fatal("MAIL FROM succeeded on a connection opened before Down")
	}
}

func TestRequireAuth(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RequireAuth("errand", "s3cret")
	from, to := "shop@example.com", []string{"ada@example.com"}

	// net/smtp's PlainAuth allows plain TCP only to localhost, which
	// 127.0.0.1 is.
	wrong := smtp.PlainAuth("", "errand", "wrong", srv.Host())
	if err := send(srv, wrong, from, to, simple); smtpCode(err) != 535 {
		t.Errorf("wrong password: err = %v, want 535", err)
	}
	if err := send(srv, nil, from, to, simple); smtpCode(err)/100 != 5 {
		t.Errorf("no AUTH: err = %v, want a 5xx", err)
	}
	right := smtp.PlainAuth("", "errand", "s3cret", srv.Host())
	if err := send(srv, right, from, to, simple); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("captured %d messages, want only the authenticated one", n)
	}
}

func TestAuthIsOptional(t *testing.T) {
	srv := smtptest.Start(t)
	anyCreds := smtp.PlainAuth("", "anyone", "anything", srv.Host())
	if err := send(srv, anyCreds, "shop@example.com", []string{"ada@example.com"}, simple); err != nil {
		t.Fatalf("send with AUTH to a server that does not require it: %v", err)
	}
	srv.WaitFor(t, 1, 5*time.Second)
}

func TestWaitForMessagesSentLater(t *testing.T) {
	srv := smtptest.Start(t)
	const n = 5
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			to := "user" + strconv.Itoa(i) + "@example.com"
			errs <- send(srv, nil, "shop@example.com", []string{to}, simple)
		}()
	}
	msgs := srv.WaitFor(t, n, 10*time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("send: %v", err)
		}
	}
	if len(msgs) != n {
		t.Fatalf("WaitFor returned %d messages, want %d", len(msgs), n)
	}
}

// fakeTB records a failure instead of ending the test, so WaitFor's
// timeout can be checked.
type fakeTB struct {
	testing.TB
	failure string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
}

func TestWaitForTimesOut(t *testing.T) {
	srv := smtptest.Start(t)
	srv.RejectPermanently(550, "no")
	_ = send(srv, nil, "shop@example.com", []string{"ada@example.com"}, simple)

	tb := &fakeTB{TB: t}
	start := time.Now()
	msgs := srv.WaitFor(tb, 1, 100*time.Millisecond)
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("WaitFor returned after %s, want about 100ms", elapsed)
	}
	if msgs != nil {
		t.Errorf("WaitFor returned %d messages on timeout", len(msgs))
	}
	for _, want := range []string{"1 message(s)", "got 0", "1 transaction(s) reached MAIL FROM"} {
		if !strings.Contains(tb.failure, want) {
			t.Errorf("failure %q does not mention %q", tb.failure, want)
		}
	}
}
