package web

import (
	"fmt"
	"testing"
	"time"
)

// A guesser is locked out after the limit for a whole window, then may try
// again; one client's failures never lock out another.
func TestFailedLoginsLockOutThenExpire(t *testing.T) {
	l := newFailureLimiter(3, time.Minute, 100)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if l.locked("203.0.113.9", t0) > 0 {
			t.Fatalf("locked out after %d failures", i)
		}
		l.fail("203.0.113.9", t0.Add(time.Duration(i)*10*time.Second))
	}
	at := t0.Add(30 * time.Second)
	if wait := l.locked("203.0.113.9", at); wait != 50*time.Second {
		t.Fatalf("lockout after the third failure: %s left, want 50s (a whole minute from it, at 20s)", wait)
	}
	if l.locked("198.51.100.7", at) > 0 {
		t.Fatal("another client is locked out too")
	}
	if l.locked("203.0.113.9", t0.Add(80*time.Second)) > 0 {
		t.Fatal("still locked out after the window")
	}
	l.fail("203.0.113.9", t0.Add(80*time.Second))
	if l.locked("203.0.113.9", t0.Add(80*time.Second)) > 0 {
		t.Fatal("one failure after the lockout locked the client out again")
	}
}

// A caller with endless addresses cannot grow the map past its bound, and the
// clients already locked out stay locked out while others come and go.
func TestFailedLoginTrackingIsBounded(t *testing.T) {
	l := newFailureLimiter(2, time.Minute, 50)
	t0 := time.Unix(1_800_000_000, 0)
	l.fail("203.0.113.9", t0)
	l.fail("203.0.113.9", t0)
	for i := range 10_000 {
		l.fail(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), t0.Add(time.Second+time.Duration(i)*time.Millisecond))
	}
	if n := len(l.clients); n > 50 {
		t.Fatalf("%d clients tracked, bound 50", n)
	}
	if l.locked("203.0.113.9", t0.Add(20*time.Second)) == 0 {
		t.Fatal("a flood of other addresses flushed a lockout")
	}
}

func TestLoginFailuresCountPerIPv6Slash64(t *testing.T) {
	a, b := clientKey("[2001:db8:1:2::1]:5555"), clientKey("[2001:db8:1:2:ffff::9]:80")
	if a != b {
		t.Fatalf("two addresses of one /64 counted apart: %q %q", a, b)
	}
	if clientKey("[2001:db8:1:3::1]:1") == a {
		t.Fatal("another /64 counted together")
	}
	if got := clientKey("192.0.2.1:4000"); got != "192.0.2.1" {
		t.Fatalf("IPv4 key %q", got)
	}
}

// The Host names the dashboard answers to: errand's public host and loopback,
// with any port; anything a rebound DNS name could send is refused.
func TestDashboardHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LOCALHOST.:8080": true,
		"127.0.0.1": true, "127.0.0.1:9": true, "[::1]": true, "[::1]:8080": true,
		"errand.shop.test": true, "Errand.Shop.Test:443": true,
		"evil.example": false, "evil.example:8080": false, "": false,
		"localhost.evil.example": false, "127.0.0.1.nip.io": false, "errand.shop.test.evil.example": false,
		"10.0.0.5:8080": false, "0.0.0.0:8080": false,
	} {
		if got := dashboardHost(host, "errand.shop.test"); got != want {
			t.Errorf("Host %q: allowed=%v, want %v", host, got, want)
		}
	}
}
