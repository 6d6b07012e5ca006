package redistest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/errandhq/errand/internal/redistest"
)

func TestStartServesCommands(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)

	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want a loopback address", srv.Addr())
	}
	c := srv.Client()
	if err := c.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "greeting").Result(); err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want hello", got, err)
	}
	if srv.Client() != c {
		t.Error("Client() returned a new client on the second call")
	}
}

func TestServersAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	if err := a.Client().Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client().Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET on the other server: err = %v, want redis.Nil", err)
	}
}

func TestPassword(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Password("s3cret"))
	if srv.Password() != "s3cret" {
		t.Fatalf("Password() = %q", srv.Password())
	}
	if err := srv.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with password: %v", err)
	}

	anon := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true, MaxRetries: -1})
	defer anon.Close()
	err := anon.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without password: err = %v, want NOAUTH", err)
	}
}

// With appendfsync always, a write acknowledged before a SIGKILL is on disk.
func TestAppendOnlySurvivesKill(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.AppendOnly())
	addr := srv.Addr()
	c := srv.Client()
	for i := range 100 {
		if err := c.RPush(ctx, "jobs", strconv.Itoa(i)).Err(); err != nil {
			t.Fatalf("RPUSH %d: %v", i, err)
		}
	}

	srv.Kill()
	probe := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1, DialerRetries: 1})
	defer probe.Close()
	if err := probe.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	srv.Restart()

	if srv.Addr() != addr {
		t.Fatalf("Restart moved the server from %s to %s", addr, srv.Addr())
	}
	if n, err := c.LLen(ctx, "jobs").Result(); err != nil || n != 100 {
		t.Fatalf("LLEN after kill and restart = %d, %v; want 100", n, err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir(), "appendonlydir")); err != nil {
		t.Errorf("no AOF directory in %s: %v", srv.Dir(), err)
	}
}

func TestAppendOnlySurvivesStop(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.AppendOnly(), redistest.Password("pw"))
	c := srv.Client()
	if err := c.Set(ctx, "order:1", "paid", 0).Err(); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	srv.Stop() // stopping a stopped server is a no-op
	srv.Restart()

	if got, err := c.Get(ctx, "order:1").Result(); err != nil || got != "paid" {
		t.Fatalf("GET after stop and restart = %q, %v; want paid", got, err)
	}
}

// Without the AOF nothing is persisted, which shows the option is what makes
// the difference in the tests above.
func TestWithoutAppendOnlyDataIsLost(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart() // stops gracefully first
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after restart: err = %v, want redis.Nil", err)
	}
}

func TestTLS(t *testing.T) {
	s := redistest.Start(t, redistest.TLS())
	if err := s.Client().Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	// A plain-text client gets nowhere.
	plain := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer plain.Close()
	if err := plain.Ping(context.Background()).Err(); err == nil {
		t.Fatal("a plain-text client was answered by a TLS-only server")
	}
}

func TestACLUser(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.ACLUser("errand", "acl-pass"))
	if srv.Username() != "errand" || srv.Password() != "acl-pass" {
		t.Fatalf("Username, Password = %q, %q", srv.Username(), srv.Password())
	}
	if err := srv.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET as the ACL user: %v", err)
	}
	// The default user is off: neither no login nor its name with the right
	// password gets in.
	for name, o := range map[string]*redis.Options{
		"no login":     {Addr: srv.Addr()},
		"default user": {Addr: srv.Addr(), Password: "acl-pass"},
		"wrong pass":   {Addr: srv.Addr(), Username: "errand", Password: "nope"},
	} {
		o.DisableIdentity, o.MaxRetries = true, -1
		c := redis.NewClient(o)
		err := c.Get(ctx, "k").Err()
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "NOAUTH") && !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("%s: GET err = %v, want NOAUTH or WRONGPASS", name, err)
		}
	}
	// The ACL user survives a restart (it is on the command line).
	srv.Restart()
	if got, err := srv.Client().Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING after restart: %q, %v", got, err)
	}
}

func TestClientCerts(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.ClientCerts())
	if err := srv.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with the client certificate: %v", err)
	}
	if len(srv.TLSConfig().Certificates) != 1 {
		t.Fatal("TLSConfig presents no client certificate")
	}
	// Trusting the server is not enough: without a certificate of its own a
	// client is turned away.
	noCert := srv.TLSConfig()
	noCert.Certificates = nil
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: noCert, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was answered")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
}
