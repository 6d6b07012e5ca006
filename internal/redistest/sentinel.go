package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor the master
// under (redis.master_name).
const MasterName = "errand"

// Sentinel timings: a master that does not answer for downAfter is down for
// a sentinel; failoverTimeout bounds a failover and spaces out retries of a
// failed one (twice it), so it is small for tests.
const (
	downAfter       = 1000 * time.Millisecond
	failoverTimeout = 3000 * time.Millisecond
	sentinelCount   = 3
	sentinelQuorum  = 2
)

// ReplicaOf makes the server a replica of the master at addr (host:port).
func ReplicaOf(addr string) Option {
	return func(o *options) { o.replicaOf = addr }
}

func (s *Server) replicaArgs() []string {
	if s.opts.replicaOf == "" {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.opts.replicaOf)
	return []string{"--replicaof", host, port}
}

// Pause stops the server with SIGSTOP: it keeps its connections open but
// answers nothing, as a hung or partitioned host does, until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a server stopped by Pause (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		s.tb.Fatalf("redistest: %s to %s: not running", sig, s.Addr())
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %s to %s: %v", sig, s.Addr(), err)
	}
}

// Sentinel is a Redis deployment managed by Sentinel: a master, a replica and
// three sentinels (quorum 2, down-after 1 s), each a process on a free
// loopback port, killed when the test ends.
type Sentinel struct {
	tb        testing.TB
	Master    *Server // the master at the start
	Replica   *Server // its replica at the start
	Sentinels []*SentinelProcess
}

// SentinelProcess is one `redis-server --sentinel`.
type SentinelProcess struct {
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Addr is the sentinel's host:port.
func (p *SentinelProcess) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Kill ends the sentinel with SIGKILL.
func (p *SentinelProcess) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// StartSentinel starts the deployment and waits until every sentinel knows
// the replica and the other sentinels, so a failover can happen.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	d := &Sentinel{tb: tb}
	d.Master = Start(tb)
	d.Replica = Start(tb, ReplicaOf(d.Master.Addr()))
	for range sentinelCount {
		d.Sentinels = append(d.Sentinels, d.startSentinel())
	}
	d.waitReady()
	return d
}

// Addrs are the sentinels' addresses (redis.addrs).
func (d *Sentinel) Addrs() []string {
	out := make([]string, len(d.Sentinels))
	for i, p := range d.Sentinels {
		out[i] = p.Addr()
	}
	return out
}

// Server returns the started server at addr, or nil.
func (d *Sentinel) Server(addr string) *Server {
	for _, s := range []*Server{d.Master, d.Replica} {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// MasterAddr returns the master's address as the sentinels that answer
// agree on it by a majority, or "" when they do not.
func (d *Sentinel) MasterAddr() string {
	votes := map[string]int{}
	for _, p := range d.Sentinels {
		if a, err := p.ask(func(ctx context.Context, c *redis.SentinelClient) ([]string, error) {
			return c.GetMasterAddrByName(ctx, MasterName).Result()
		}); err == nil && len(a) == 2 {
			votes[net.JoinHostPort(a[0], a[1])]++
		}
	}
	for addr, n := range votes {
		if n >= sentinelQuorum {
			return addr
		}
	}
	return ""
}

// WaitFailover waits up to timeout until the sentinels name a master other
// than old and that server answers as a master; it returns its address.
func (d *Sentinel) WaitFailover(old string, timeout time.Duration) string {
	d.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if addr := d.MasterAddr(); addr != "" && addr != old {
			if s := d.Server(addr); s != nil && s.Role() == "master" {
				return addr
			}
		}
		if time.Now().After(deadline) {
			d.tb.Fatalf("redistest: no failover from %s within %s; sentinel logs:\n%s", old, timeout, d.sentinelLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Role is the server's answer to ROLE ("master", "slave"), or "" when it
// does not answer.
func (s *Server) Role() string {
	c := s.newClient(noRetries)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := c.Do(ctx, "role").Slice()
	if err != nil || len(r) == 0 {
		return ""
	}
	v, _ := r[0].(string)
	return v
}

func (d *Sentinel) startSentinel() *SentinelProcess {
	d.tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		d.tb.Fatalf("redistest: redis-server not found on PATH (%v); run scripts/test.sh, which installs it", err)
	}
	host, port, _ := net.SplitHostPort(d.Master.Addr())
	for attempt := 1; ; attempt++ {
		p := &SentinelProcess{dir: d.tb.TempDir()}
		if p.port, err = freePort(); err != nil {
			d.tb.Fatalf("redistest: find a free port: %v", err)
		}
		conf := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %q
logfile ""
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, p.port, p.dir, MasterName, host, port, sentinelQuorum,
			MasterName, downAfter.Milliseconds(), MasterName, failoverTimeout.Milliseconds(), MasterName)
		path := filepath.Join(p.dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			d.tb.Fatal(err)
		}
		logf, err := os.Create(filepath.Join(p.dir, "sentinel.log"))
		if err != nil {
			d.tb.Fatal(err)
		}
		p.cmd = exec.Command(bin, path, "--sentinel")
		p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = p.dir, logf, logf
		p.cmd.SysProcAttr = sysProcAttr()
		if err := p.cmd.Start(); err != nil {
			_ = logf.Close()
			d.tb.Fatalf("redistest: start sentinel: %v", err)
		}
		_ = logf.Close()
		p.exited = make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(p.exited) }()
		d.tb.Cleanup(func() {
			select {
			case <-p.exited:
			default:
				p.Kill()
			}
		})
		if err := p.waitPing(); err == nil {
			return p
		} else if attempt == portAttempts {
			d.tb.Fatalf("redistest: sentinel on %s: %v\n%s", p.Addr(), err, p.log())
		}
		p.Kill()
	}
}

func (p *SentinelProcess) waitPing() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering PING: %s", p.cmd.ProcessState)
		default:
		}
		if conn, err := net.DialTimeout("tcp", p.Addr(), 500*time.Millisecond); err == nil {
			_ = conn.Close()
			if _, err := p.ask(func(ctx context.Context, c *redis.SentinelClient) ([]string, error) {
				return nil, c.Ping(ctx).Err()
			}); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %s", startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *SentinelProcess) ask(f func(context.Context, *redis.SentinelClient) ([]string, error)) ([]string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return f(ctx, c)
}

func (p *SentinelProcess) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "sentinel.log"))
	if len(b) > logTail {
		b = b[len(b)-logTail:]
	}
	return string(b)
}

func (d *Sentinel) sentinelLogs() string {
	var b strings.Builder
	for _, p := range d.Sentinels {
		fmt.Fprintf(&b, "--- sentinel %s\n%s\n", p.Addr(), p.log())
	}
	return b.String()
}

// waitReady waits until the replica is in sync and every sentinel sees it
// and the two other sentinels (they find each other through the master).
func (d *Sentinel) waitReady() {
	d.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, p := range d.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DisableIdentity: true})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			m, err := c.Master(ctx, MasterName).Result()
			cancel()
			_ = c.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
				ready = false
				break
			}
		}
		if ready && strings.Contains(info(d.Master, "replication"), "state=online") {
			return
		}
		if time.Now().After(deadline) {
			d.tb.Fatalf("redistest: sentinels not ready within 30s:\n%s", d.sentinelLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func info(s *Server, section string) string {
	c := s.newClient(noRetries)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, _ := c.Info(ctx, section).Result()
	return v
}
