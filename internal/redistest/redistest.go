// Package redistest starts a real redis-server for tests.
//
// Each server runs as a child process on a free loopback port with its data
// in a t.TempDir(), and is killed when the test ends. Tests that prove
// durability use AppendOnly together with Kill or Stop and Restart.
//
// Code meant for any Redis deployment is tested with clients of other kinds
// (Ring, and ClusterClient on a server started with Cluster, a real cluster of
// one node), and with the SlotCheck hook, which fails a test for any script
// Redis Cluster would refuse.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// startTimeout bounds how long a fresh redis-server may take to answer
	// PING; loading a large AOF on Restart is the slow case.
	startTimeout = 15 * time.Second
	// stopTimeout bounds a graceful SHUTDOWN before falling back to signals.
	stopTimeout = 10 * time.Second
	// portAttempts is how often Start picks a new port when another process
	// grabbed the free one between probing and redis-server binding it.
	portAttempts = 5
	// logTail is how much of redis-server's log goes into failure messages.
	logTail = 4 << 10
)

// Option configures a Server started by Start.
type Option func(*options)

type options struct {
	appendOnly  bool
	password    string
	tls         bool
	clientCerts bool
	aclUser     string
	aclPassword string
	cluster     bool
	member      bool          // a node of a multi-node cluster: StartCluster assigns its slots
	nodeTimeout time.Duration // cluster-node-timeout, when not the default
	replicaOf   string        // host:port of the master, for a replica (sentinel.go)
}

// AppendOnly turns on the append-only file with appendfsync always, so every
// acknowledged write survives Kill and Restart.
func AppendOnly() Option {
	return func(o *options) { o.appendOnly = true }
}

// Password makes the server require AUTH with the given password.
func Password(password string) Option {
	return func(o *options) { o.password = password }
}

// ACLUser adds the Redis ACL user name with the given password and every
// permission, and turns the default user off (unless Password gives it a
// password of its own), so only a client that logs in as name gets in.
// Client, Username and Password then use this user.
func ACLUser(name, password string) Option {
	return func(o *options) { o.aclUser, o.aclPassword = name, password }
}

// Server is a running redis-server child process owned by one test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	log  string
	port int
	bus  int // the cluster bus port, in cluster mode
	opts options

	mu       sync.Mutex
	cmd      *exec.Cmd
	logShown bool          // a failure message already carried the log
	exited   chan struct{} // closed when cmd has been waited for
	client   *redis.Client
	cluster  *redis.ClusterClient
	ring     *redis.Ring
}

// Start starts redis-server on a free loopback port and waits until it
// answers PING. The server is killed, and its client closed, when the test
// ends. It fails the test if redis-server is not installed.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server not found on PATH (%v); run scripts/test.sh, which installs it", err)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	s.log = filepath.Join(s.dir, "redis.log")
	for _, o := range opts {
		o(&s.opts)
	}
	tb.Cleanup(s.cleanup)

	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		if s.opts.cluster {
			if s.bus, err = freePort(); err != nil {
				tb.Fatalf("redistest: find a free port: %v", err)
			}
		}
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errAddrInUse) || attempt == portAttempts {
			tb.Fatalf("redistest: %v\n%s", err, s.logTail())
		}
	}
}

// Addr is the server's host:port, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Username is the ACL user Client logs in as, or "" for the default user.
func (s *Server) Username() string {
	return s.opts.aclUser
}

// Password is the password Client logs in with: the ACL user's, else the
// one the default user requires, or "" if none.
func (s *Server) Password() string {
	if s.opts.aclUser != "" {
		return s.opts.aclPassword
	}
	return s.opts.password
}

// Dir is the server's working directory, which holds its AOF and log.
func (s *Server) Dir() string {
	return s.dir
}

// Client returns a go-redis client for assertions, connected with the
// server's password. It is shared by every call, survives Restart (it
// reconnects) and is closed when the test ends.
func (s *Server) Client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = s.newClient(0)
	}
	return s.client
}

// Stop shuts the server down gracefully with SHUTDOWN, so the append-only
// file is flushed, and waits for the process to exit.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return
	}
	if err := s.shutdown(); err != nil {
		s.tb.Fatalf("redistest: stop %s: %v\n%s", s.Addr(), err, s.logTail())
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for the
// process to exit. Only writes already in the AOF survive a Restart.
func (s *Server) Kill() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return
	}
	s.kill()
}

// Restart starts the server again on the same port with the same directory
// and waits until it answers PING. A server that is still running is first
// stopped gracefully.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		if err := s.shutdown(); err != nil {
			s.tb.Fatalf("redistest: stop %s before restart: %v\n%s", s.Addr(), err, s.logTail())
		}
	}
	// redis-server binds with SO_REUSEADDR, so connections of the old
	// process do not block the port; but while it was down another socket
	// may have taken it (even as the local port of an outgoing connection),
	// and such a socket usually goes away soon.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			s.tb.Fatalf("redistest: restart on %s: %v\n%s", s.Addr(), err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var errAddrInUse = errors.New("address already in use")

// start launches redis-server on s.port and waits for PING. s.mu is held by
// the caller, or the Server is not yet shared.
func (s *Server) start() error {
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.opts.tls {
		if _, err := os.Stat(filepath.Join(s.dir, "server.pem")); err != nil {
			if err := writeCerts(s.dir); err != nil {
				return fmt.Errorf("certificates: %w", err)
			}
		}
		authClients := "no"
		if s.opts.clientCerts {
			authClients = "yes"
		}
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
			"--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", authClients}
	}
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "", // no RDB snapshots: durability is the AOF's job
		"--logfile", "", // log to stdout, which goes to s.log
		"--loglevel", "notice",
		"--repl-diskless-sync-delay", "0", // a replica (sentinel.go) syncs at once
	}
	args = append(port, args...)
	if s.opts.appendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.password != "" {
		args = append(args, "--requirepass", s.opts.password)
	}
	args = append(args, s.clusterArgs()...)
	args = append(args, s.replicaArgs()...)
	if s.opts.aclUser != "" {
		// Each --user is one ACL rule line, as in redis.conf.
		args = append(args, "--user", s.opts.aclUser, "on", ">"+s.opts.aclPassword, "~*", "&*", "+@all")
		if s.opts.password == "" {
			args = append(args, "--user", "default", "off")
		}
	}

	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	logStart, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fmt.Fprintf(logf, "--- redistest: starting redis-server on %s at %s\n", s.Addr(), time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	err = s.waitReady()
	if err == nil && s.opts.cluster {
		err = s.serveAllSlots()
	}
	if err != nil {
		s.kill()
		if log := s.logBytes(); int64(len(log)) > logStart &&
			bytes.Contains(log[logStart:], []byte("Address already in use")) {
			return fmt.Errorf("redis-server on %s: %w", s.Addr(), errAddrInUse)
		}
		return fmt.Errorf("redis-server on %s: %w", s.Addr(), err)
	}
	return nil
}

// waitReady polls PING until it answers, the process exits, or startTimeout
// passes.
func (s *Server) waitReady() error {
	c := s.newClient(noRetries) // the loop below is the retry
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering PING: %s", s.cmd.ProcessState)
		default:
		}
		// Dial first so go-redis does not log every refused connection
		// while the server is still starting.
		var conn net.Conn
		if conn, lastErr = net.DialTimeout("tcp", s.Addr(), 500*time.Millisecond); lastErr == nil {
			_ = conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			lastErr = c.Ping(ctx).Err()
			cancel()
			if lastErr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %s: %w", startTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shutdown asks the server to SHUTDOWN, which fsyncs the AOF, and waits for
// the process to exit; if it will not, SIGTERM and then SIGKILL follow so a
// test never hangs, and an error reports it.
func (s *Server) shutdown() error {
	c := s.newClient(noRetries) // a retried SHUTDOWN would hit a closed port
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	// SHUTDOWN answers only when it fails; on success the connection just
	// closes, so the error is read from the process exit instead.
	shutdownErr := c.Shutdown(ctx).Err()
	cancel()
	c.Close()

	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return fmt.Errorf("SHUTDOWN did not stop the server (%v); SIGTERM did", shutdownErr)
	case <-time.After(stopTimeout):
	}
	s.kill()
	return fmt.Errorf("neither SHUTDOWN (%v) nor SIGTERM stopped the server within %s; killed it", shutdownErr, 2*stopTimeout)
}

// kill sends SIGKILL and waits for the process to be reaped.
func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// noRetries asks newClient for a client that neither retries commands nor
// redials, for callers that poll or expect the connection to drop.
const noRetries = -1

// newClient returns a client for the server; maxRetries is go-redis's
// MaxRetries (0 means its default) or noRetries.
func (s *Server) newClient(maxRetries int) *redis.Client {
	dialRetries := 0 // go-redis's default
	if maxRetries == noRetries {
		dialRetries = 1
	}
	return redis.NewClient(&redis.Options{
		Addr:            s.Addr(),
		MaxRetries:      maxRetries,
		DialerRetries:   dialRetries,
		Username:        s.Username(),
		Password:        s.Password(),
		TLSConfig:       s.TLSConfig(),
		DisableIdentity: true, // CLIENT SETINFO is unknown before Redis 7.2
		DialTimeout:     time.Second,
		// Honour the caller's context deadline on reads, so a poll cannot
		// hang on something that accepts connections but never answers.
		ContextTimeoutEnabled: true,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
	})
}

// cleanup runs before t.TempDir's own cleanup (registered earlier), so the
// process is gone before its directory is removed.
func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
	}
	if s.cluster != nil {
		_ = s.cluster.Close()
		s.cluster = nil
	}
	if s.ring != nil {
		_ = s.ring.Close()
		s.ring = nil
	}
	if s.running() {
		s.kill()
	}
	if s.tb.Failed() && s.cmd != nil && !s.logShown {
		s.tb.Logf("redistest: redis-server %s log:\n%s", s.Addr(), s.logTail())
	}
}

func (s *Server) logBytes() []byte {
	b, _ := os.ReadFile(s.log)
	return b
}

// logTail returns the end of the server's log for failure messages.
func (s *Server) logTail() string {
	s.logShown = true
	b := s.logBytes()
	if len(b) == 0 {
		return "(redis-server log is empty)"
	}
	if len(b) > logTail {
		b = append([]byte("...\n"), b[len(b)-logTail:]...)
	}
	return "redis-server log (" + s.log + "):\n" + string(b)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before redis-server binds it; Start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
