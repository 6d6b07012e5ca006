package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
)

// redisConfig writes a config with the given [redis] section, a database
// and an HTTP address of the test's own.
func redisConfig(t *testing.T, redisTOML string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("[redis]\n%s\n[http]\naddr = %q\n[database]\nurl = %q\n[log]\nlevel = \"debug\"\n",
		redisTOML, freeAddr(t), "file:"+filepath.Join(dir, "errand.db"))
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string { return freeAddr(t) }

// runFor runs an errand command for at most d and returns its error and log.
func runFor(d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	log := &syncBuffer{}
	err := run(ctx, args, nil, log, log)
	return log.String(), err
}

// A setting that keeps errand from its Redis gets one line naming it: the
// CLI stops with it, `errand serve` warns and takes requests meanwhile.
func TestUnreachableSentinelsAndSeedsAreNamed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, toml, want string }{
		{"sentinels", fmt.Sprintf("mode = \"sentinel\"\nmaster_name = \"errand\"\naddrs = [%q, %q]\n", closedAddr(t), closedAddr(t)),
			"cannot reach any sentinel in redis.addrs"},
		{"cluster seeds", fmt.Sprintf("mode = \"cluster\"\naddrs = [%q]\n", closedAddr(t)),
			"cannot reach the Redis Cluster through any of its seeds in redis.addrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := redisConfig(t, tc.toml)
			_, err := runFor(30*time.Second, "queues", "--config", cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("errand queues: %v; want one line with %q", err, tc.want)
			}
			t.Logf("errand queues: %v", err)
		})
	}
}

// A master name the sentinels do not know is a setting to fix, as a wrong
// password is: the CLI, the worker and serve stop with one line naming
// redis.master_name (waiting would not help, and serve would pile jobs up in
// the outbox for nobody).
func TestWrongMasterNameIsNamed(t *testing.T) {
	t.Parallel()
	d := redistest.StartSentinel(t)
	cfg := redisConfig(t, fmt.Sprintf("mode = \"sentinel\"\nmaster_name = \"nope\"\naddrs = [\"%s\"]\n", strings.Join(d.Addrs(), `", "`)))
	for _, cmd := range [][]string{{"queues"}, {"worker", "--queues", "critical"}, {"serve"}} {
		_, err := runFor(30*time.Second, append(cmd, "--config", cfg)...)
		if err == nil || !strings.Contains(err.Error(), `know no master named "nope"`) || !strings.Contains(err.Error(), "check redis.master_name") ||
			strings.Contains(err.Error(), "\n") {
			t.Fatalf("errand %s: %v; want one line naming redis.master_name", cmd, err)
		}
		t.Logf("errand %s: %v", cmd, err)
	}
}

// Unreachable sentinels are Redis being down: serve warns, naming
// redis.addrs, and takes registrations into the outbox meanwhile.
func TestServeWithSentinelsDownTakesRegistrations(t *testing.T) {
	t.Parallel()
	cfg := redisConfig(t, fmt.Sprintf("mode = \"sentinel\"\nmaster_name = \"errand\"\naddrs = [%q]\n", closedAddr(t)))
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, nil, log, log) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(log.lines("serving")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := log.lines("serving"); len(l) == 1 {
		_, addr, _ := strings.Cut(l[0], " addr=")
		addr, _, _ = strings.Cut(addr, " ")
		s := &stack{t: t, base: "http://" + addr}
		if code, body := s.post("/api/users", registration("ada@shop.test"), nil); code != http.StatusCreated {
			t.Errorf("registration with the sentinels down: %d %v", code, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("errand serve stopped: %v", err)
	}
	if w := log.lines("level=WARN", "cannot reach any sentinel in redis.addrs"); len(w) != 1 || len(log.lines("serving")) != 1 {
		t.Fatalf("errand serve: want one WARN naming redis.addrs, then serving; log:\n%s", log.String())
	}
}

// A Redis that may evict keys is reported at start.
func TestEvictingRedisIsReported(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if err := rs.Client().ConfigSet(t.Context(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := redisConfig(t, fmt.Sprintf("addr = %q\n", rs.Addr()))
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, nil, log, log) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(log.lines("serving")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("errand serve: %v", err)
	}
	if w := log.lines("level=WARN", "maxmemory-policy noeviction", "maxmemory_policy=allkeys-lru"); len(w) != 1 {
		t.Fatalf("want one WARN about maxmemory-policy; log:\n%s", log.String())
	}
	// noeviction: no warning.
	if err := rs.Client().ConfigSet(t.Context(), "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	log = &syncBuffer{}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, nil, log, log) }()
	deadline = time.Now().Add(30 * time.Second)
	for len(log.lines("serving")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if w := log.lines("maxmemory"); len(w) != 0 || len(log.lines("serving")) != 1 {
		t.Fatalf("noeviction: want no warning and serving; log:\n%s", log.String())
	}
}
