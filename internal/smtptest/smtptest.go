// Package smtptest runs a real SMTP server in the test process.
//
// The server listens on a free loopback port, captures every message it
// accepts (with its MIME body decoded), and can be told at run time to fail
// the way mail servers fail: permanent 5xx rejections, temporary 4xx
// rejections, and a refused connection while it is down.
package smtptest

import (
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stage is the SMTP command at which a configured rejection is answered.
type Stage int

const (
	// AtMail rejects MAIL FROM, so nothing of the message is sent.
	AtMail Stage = iota
	// AtRcpt rejects every RCPT TO.
	AtRcpt
	// AtData rejects the message after its whole content was transferred,
	// the case where a client must not assume delivery.
	AtData
)

func (st Stage) String() string {
	switch st {
	case AtMail:
		return "MAIL FROM"
	case AtRcpt:
		return "RCPT TO"
	case AtData:
		return "DATA"
	}
	return "Stage(" + strconv.Itoa(int(st)) + ")"
}

// Server is an in-process SMTP server owned by one test.
type Server struct {
	tb   testing.TB
	port int

	mu        sync.Mutex
	srv       *smtp.Server // nil while Down
	listener  *listener
	served    chan struct{} // closed when srv's Serve loop has returned
	messages  []Message
	changed   chan struct{} // closed and replaced whenever messages grows
	attempts  int
	reject    *smtp.SMTPError // nil while accepting
	stage     Stage
	authUser  string
	authPass  string
	authNeeds bool
	// rcptRejects maps an address suffix ("@bounce.test") to the answer
	// every RCPT TO ending with it gets.
	rcptRejects map[string]*smtp.SMTPError
	rcptTries   map[string]int
	latency     time.Duration
}

// Start starts an SMTP server on a free loopback port. It is closed when
// the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen on a loopback port: %v", err)
	}
	s := &Server{
		tb:      tb,
		port:    l.Addr().(*net.TCPAddr).Port,
		changed: make(chan struct{}),
	}
	s.serve(l)
	tb.Cleanup(s.Down)
	return s
}

// Host is the address the server listens on, "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the TCP port the server listens on; it stays the same across
// Down and Up.
func (s *Server) Port() int { return s.port }

// Addr is Host and Port joined, e.g. "127.0.0.1:42311".
func (s *Server) Addr() string {
	return net.JoinHostPort(s.Host(), strconv.Itoa(s.port))
}

// Messages returns a copy of every message accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until at least n messages have been accepted and returns
// all accepted messages, oldest first. It fails tb if that takes longer
// than timeout.
func (s *Server) WaitFor(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		if got >= n {
			msgs := append([]Message(nil), s.messages...)
			s.mu.Unlock()
			return msgs
		}
		attempts := s.attempts
		s.mu.Unlock()

		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("smtptest: waited %s for %d message(s) on %s; got %d (%d transaction(s) reached MAIL FROM)",
				timeout, n, s.Addr(), got, attempts)
			return nil
		}
	}
}

// Attempts is the number of mail transactions that reached MAIL FROM,
// whether they were accepted or rejected.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// RejectPermanently makes every following transaction fail with the given
// 5xx code and message, as a mailbox that does not exist or a policy
// refusal would. It answers at MAIL FROM unless RejectAt chose another
// stage.
func (s *Server) RejectPermanently(code int, msg string) {
	s.tb.Helper()
	if code < 500 || code > 599 {
		s.tb.Fatalf("smtptest: RejectPermanently(%d): want a 5xx code", code)
	}
	s.setReject(code, msg)
}

// RejectTemporarily makes every following transaction fail with the given
// 4xx code and message, as a greylisting or overloaded server would. It
// answers at MAIL FROM unless RejectAt chose another stage.
func (s *Server) RejectTemporarily(code int, msg string) {
	s.tb.Helper()
	if code < 400 || code > 499 {
		s.tb.Fatalf("smtptest: RejectTemporarily(%d): want a 4xx code", code)
	}
	s.setReject(code, msg)
}

// RejectAt chooses the SMTP command at which rejections are answered; the
// default is AtMail. Accept restores the default.
func (s *Server) RejectAt(stage Stage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stage = stage
}

// Accept makes the server accept messages again, undoing RejectPermanently,
// RejectTemporarily and RejectAt.
func (s *Server) Accept() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = nil
	s.stage = AtMail
}

func (s *Server) setReject(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = &smtp.SMTPError{
		Code:         code,
		EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0},
		Message:      msg,
	}
}

// RejectRecipients makes every RCPT TO whose address ends with suffix (e.g.
// "@bounce.test") fail with code and msg, while other recipients are
// accepted: one mailbox refused, the server otherwise fine.
func (s *Server) RejectRecipients(suffix string, code int, msg string) {
	s.tb.Helper()
	if code < 400 || code > 599 {
		s.tb.Fatalf("smtptest: RejectRecipients(%d): want a 4xx or 5xx code", code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcptRejects == nil {
		s.rcptRejects = map[string]*smtp.SMTPError{}
	}
	s.rcptRejects[strings.ToLower(suffix)] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// RecipientAttempts is how many times a RCPT TO named addr, accepted or not.
func (s *Server) RecipientAttempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcptTries[strings.ToLower(addr)]
}

// SetLatency makes the server take d to answer each MAIL FROM, as a slow
// relay does; 0 answers at once.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RequireAuth makes the server require AUTH PLAIN with these credentials
// before MAIL FROM. AUTH is allowed over plain TCP. Without RequireAuth the
// server still offers AUTH PLAIN and accepts any credentials, as a local
// mail catcher does.
func (s *Server) RequireAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authNeeds, s.authUser, s.authPass = true, user, pass
}

// Down closes the listener and every open connection, so new connections
// are refused, as when the mail server is down. Down on a stopped server
// does nothing.
func (s *Server) Down() {
	s.mu.Lock()
	srv, l, served := s.srv, s.listener, s.served
	s.srv, s.listener = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	// Closing the listener ourselves, rather than only through srv.Close,
	// also stops a Serve loop that has not registered it with srv yet.
	_ = l.Close()
	<-served
	_ = srv.Close()
	// srv.Close misses connections accepted but not yet handed to a
	// session; the listener saw every one.
	l.closeConns()
}

// Up listens again on the same port after Down. Up on a running server
// does nothing. It fails the test if the port cannot be bound within a few
// seconds, so call it from the test's goroutine.
func (s *Server) Up() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	// Go listens with SO_REUSEADDR, so our own closed connections do not
	// block the port; but while it was down another socket may have taken
	// it (even as the local port of an outgoing connection), and such a
	// socket usually goes away soon.
	var (
		l   net.Listener
		err error
	)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err = net.Listen("tcp", s.Addr())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("smtptest: listen again on %s: %v", s.Addr(), err)
	}
	s.serve(l)
}

// serve runs a fresh smtp.Server on l; go-smtp's Server cannot serve again
// once closed, so every Up gets a new one.
func (s *Server) serve(nl net.Listener) {
	l := &listener{Listener: nl, conns: make(map[*conn]struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	// Connection errors after Down are expected, and logging to the test
	// from a server goroutine could outlive the test.
	srv.ErrorLog = log.New(io.Discard, "", 0)

	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()

	s.mu.Lock()
	s.srv, s.listener, s.served = srv, l, served
	s.mu.Unlock()
}

// listener keeps track of the connections it accepted so Down can cut
// them all.
type listener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*conn]struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, l: l}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

func (l *listener) closeConns() {
	l.mu.Lock()
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type conn struct {
	net.Conn
	l *listener
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

func (s *Server) newSession(*smtp.Conn) (smtp.Session, error) {
	return &session{server: s}, nil
}

// session is one SMTP connection. go-smtp calls its methods from the
// connection's goroutine, one at a time.
type session struct {
	server *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s := ss.server
		s.mu.Lock()
		needs, wantUser, wantPass := s.authNeeds, s.authUser, s.authPass
		s.mu.Unlock()
		if needs && (user != wantUser || pass != wantPass) {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	s := ss.server
	s.mu.Lock()
	s.attempts++
	latency := s.latency
	s.mu.Unlock()
	// The wait comes before the message is sent, so a client that dies
	// meanwhile has delivered nothing.
	if latency > 0 {
		time.Sleep(latency)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authNeeds && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if err := s.rejection(AtMail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.server
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcptTries == nil {
		s.rcptTries = map[string]int{}
	}
	s.rcptTries[strings.ToLower(to)]++
	if err := s.rejection(AtRcpt); err != nil {
		return err
	}
	for suffix, e := range s.rcptRejects {
		if strings.HasSuffix(strings.ToLower(to), suffix) {
			err := *e
			return &err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	s := ss.server
	s.mu.Lock()
	err = s.rejection(AtData)
	s.mu.Unlock()
	if err != nil {
		return err
	}

	msg := parse(raw)
	msg.From = ss.from
	msg.To = append([]string(nil), ss.to...)
	msg.ReceivedAt = time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, msg)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Reset ends the transaction; go-smtp calls it after DATA and on RSET.
func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// rejection returns the configured rejection if it applies at stage.
// s.mu must be held.
func (s *Server) rejection(stage Stage) error {
	if s.reject == nil || s.stage != stage {
		return nil
	}
	err := *s.reject
	return &err
}
