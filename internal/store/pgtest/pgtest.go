// Package pgtest starts a real PostgreSQL server for tests: one per test
// binary (started on first use, stopped by Main), on a free loopback port, in
// a temporary directory, with a fresh database for each test. It runs the
// server from the Debian package (/usr/lib/postgresql/15/bin, or
// ERRAND_PG_BIN); as root, as the postgres user, since initdb and postgres
// refuse root. A server that cannot be started fails the test with the
// reason: scripts/test.sh installs PostgreSQL where it is missing.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL.
type Server struct {
	dir      string
	port     int
	password string
	cmd      *exec.Cmd
	exited   chan struct{}

	mu sync.Mutex // one CREATE DATABASE at a time
	n  int
}

var (
	once     sync.Once
	shared   *Server
	startErr error
)

// Main runs the tests and then stops the server if one was started:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Start returns the test binary's server, starting it on first use.
func Start(tb testing.TB) *Server {
	tb.Helper()
	once.Do(func() { shared, startErr = Launch() })
	if startErr != nil {
		tb.Fatalf("pgtest: cannot start PostgreSQL: %v", startErr)
	}
	return shared
}

// URL returns the URL of a new, empty database that lives until the test
// ends. It carries a password, as a production URL would.
func URL(tb testing.TB) string {
	tb.Helper()
	return Start(tb).NewDatabase(tb)
}

// NewDatabase creates an empty database (a copy of an empty template) and
// returns its URL; it is dropped when the test ends.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name, err := s.CreateDatabase()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.url(name)
}

// CreateDatabase creates an empty database and returns its name (URL gives
// its URL).
func (s *Server) CreateDatabase() (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d", s.n)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+name+" TEMPLATE errand_template"); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return name, nil
}

// URL is the URL of database name.
func (s *Server) URL(name string) string { return s.url(name) }

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Password is the postgres user's password, which every URL carries.
func (s *Server) Password() string { return s.password }

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", s.password, s.port, db)
}

// admin runs one statement on the postgres database.
func (s *Server) admin(ctx context.Context, sql string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// binDir is where initdb and postgres are: ERRAND_PG_BIN, else version 15 of
// the Debian package, else its newest version installed.
func binDir() (string, error) {
	if d := os.Getenv("ERRAND_PG_BIN"); d != "" {
		return d, nil
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err == nil {
		return "/usr/lib/postgresql/15/bin", nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("no /usr/lib/postgresql/*/bin/initdb: install the Debian package postgresql (scripts/test.sh does), or set ERRAND_PG_BIN")
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi < vj
	})
	return filepath.Dir(found[len(found)-1]), nil
}

// runAs is who runs initdb and postgres: the postgres user when this
// process is root (both refuse root), else this process's user.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Launch starts a server of its own, for a program that is not a test (the
// bench); Stop stops it. settings ("fsync=on") override the tests' fast ones.
func Launch(settings ...string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "errand-pgtest-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	s := &Server{dir: dir, password: hex.EncodeToString(pw)}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(s.password+"\n"), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		_ = os.Chown(pwFile, int(cred.Uid), int(cred.Gid))
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--pwfile", pwFile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 5 {
		if lastErr = s.run(bin, cred, settings); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		_ = os.RemoveAll(dir)
		return nil, lastErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE errand_template"); err != nil {
		s.Stop()
		return nil, fmt.Errorf("create the template database: %w", err)
	}
	return s, nil
}

// run starts postgres on a free port and waits until it takes connections.
func (s *Server) run(bin string, cred *syscall.Credential, settings []string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	// Durability is not what these tests are about: fsync off, and commits
	// acknowledged before their WAL is flushed.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port), "-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=64MB")
	for _, kv := range settings {
		cmd.Args = append(cmd.Args, "-c", kv)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary that dies leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited on port %d:\n%s", s.port, tailOf(string(log)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-s.exited
	log, _ := os.ReadFile(logPath)
	return fmt.Errorf("postgres did not take connections within 30 s:\n%s", tailOf(string(log)))
}

// Stop shuts the server down (fast: connections are cut) and removes its
// directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	_ = os.RemoveAll(s.dir)
}

func tailOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
