package outbound

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandhq/errand"
)

// Addresses a callback could be aimed at to reach errand's own network, in
// every spelling that reaches them, and public ones that must stay reachable.
var (
	internalAddrs = []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255",
		"0.0.0.0", "0.1.2.3", "192.0.0.170", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.255",
		"198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "fd00::1", "fc00::1", "fdff:ffff::1", "fe80::1", "fe80::1%eth0", "febf::1", "fec0::1",
		"ff02::1", "ff05::1:3", "100::1", "3fff::1", "5f00::1",
		// IPv4 inside IPv6: mapped, compatible, translated, NAT64, 6to4, Teredo.
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0", "::ffff:100.64.0.1",
		"::127.0.0.1", "::8.8.8.8", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::c0a8:101",
		"64:ff9b:1::1", "2002:7f00:1::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
	}
	publicAddrs = []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "11.0.0.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
		"172.32.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "223.255.255.255",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2606:4700:4700::1111", "2a00:1450:4001::1", "2001:4860:4860::8888",
	}
)

func TestPublicAddrRefusesEveryInternalAddress(t *testing.T) {
	for _, s := range internalAddrs {
		err := PublicAddr(netip.MustParseAddr(s))
		if !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("%s: %v, want refused", s, err)
		}
	}
	for _, s := range publicAddrs {
		if err := PublicAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
	if err := PublicAddr(netip.Addr{}); err == nil {
		t.Error("the zero address was allowed")
	}
	if err := PublicAddr(netip.MustParseAddr("::ffff:169.254.169.254")); !strings.Contains(err.Error(), "link-local") {
		t.Errorf("a mapped address is judged as the IPv4 address it reaches: %v", err)
	}
}

func TestCheckCallbackURL(t *testing.T) {
	refused := []string{
		"http://127.0.0.1:8080/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/",
		"http://[::ffff:127.0.0.1]/", "http://[::1]:9/", "http://0.0.0.0/", "http://[fe80::1%25eth0]/",
		"http://[64:ff9b::7f00:1]/", "http://localhost:8080/", "http://LOCALHOST./", "http://api.localhost/",
		// IPv4 in other spellings that some resolvers read as an address.
		"http://2130706433/", "http://127.1/", "http://0x7f.0.0.1/", "http://017700000001/", "http://127。0。0。1/",
		// Not an absolute http(s) URL, or one with credentials.
		"", "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "http:example.com", "//example.com/x",
		"/relative", "http://", "http://user:pw@example.com/", "http://user@example.com/", "http://example.com:0/",
		"http://example.com:99999/", "http://exa mple.com/", "http://bücher.example/", "http://a..b/",
		"https://example.com/" + strings.Repeat("a", MaxCallbackURL),
	}
	for _, u := range refused {
		if err := CheckCallbackURL(u, false); err == nil {
			t.Errorf("%q was accepted", u)
		}
	}
	accepted := []string{
		"https://hooks.example.com/errand?x=1", "http://example.com:8080/cb", "https://[2606:4700:4700::1111]/cb",
		"http://8.8.8.8/", "http://a-b_c.example./x", "HTTPS://Example.COM/x", "https://xn--bcher-kva.example/",
	}
	for _, u := range accepted {
		if err := CheckCallbackURL(u, false); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	// allow_private_callbacks lifts the address check and nothing else.
	for _, u := range []string{"http://127.0.0.1:8080/", "http://localhost:8080/", "http://[fd00::1]/"} {
		if err := CheckCallbackURL(u, true); err != nil {
			t.Errorf("private allowed: %q: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://2130706433/"} {
		if err := CheckCallbackURL(u, true); err == nil {
			t.Errorf("private allowed: %q was accepted", u)
		}
	}
}

// counter is a receiver that counts what reaches it.
func counter(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// The address is checked when connecting, after the name is resolved: a
// name that resolves to loopback gets no further than an IP literal.
func TestGuardedClientRefusesLoopbackWhenConnecting(t *testing.T) {
	srv, hits := counter(t, nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, target := range []string{srv.URL, "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		_, err := NewGuarded(5*time.Second, false).R().SetBody("{}").Post(target)
		if !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("%s: %v, want refused", target, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	// allow_private_callbacks (development) reaches it.
	resp, err := NewGuarded(5*time.Second, true).R().SetBody("{}").Post(srv.URL)
	if err != nil || resp.StatusCode() != 200 || hits.Load() != 1 {
		t.Fatalf("private allowed: %v %v, %d hits", resp, err, hits.Load())
	}
}

// A proxy from the environment would be the only address the connect check
// sees, so the guarded client never uses one.
func TestGuardedClientUsesNoProxy(t *testing.T) {
	for i, rt := range guardedTransports {
		tr := rt.(cappedAnswer).next.(*http.Transport)
		if tr.Proxy != nil {
			t.Errorf("guarded transport %d uses a proxy", i)
		}
	}
}

// A 307 would replay the POST, with its body and headers, to wherever the
// receiver points; the guarded client stops at the 3xx.
func TestGuardedClientFollowsNoRedirect(t *testing.T) {
	inner, innerHits := counter(t, nil)
	outer, _ := counter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/admin", http.StatusTemporaryRedirect)
	})
	resp, err := NewGuarded(5*time.Second, true).R().SetBody("{}").Post(outer.URL)
	got := CheckGuarded("callback", "POST outcome", resp, err, time.Minute)
	if n := innerHits.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
	if c, _ := errand.ClassOf(got); c != errand.Permanent || got.Error() != "callback: POST outcome: HTTP 307" {
		t.Fatalf("a 3xx answer: %v (%v)", got, c)
	}
}

// An answer is read up to MaxGuardedAnswer and dropped; the error keeps the
// status only, so a receiver's words never come back to the caller.
func TestGuardedClientKeepsOnlyTheStatus(t *testing.T) {
	const marker = "INTERNAL-SECRET-MARKER"
	chunk := []byte(strings.Repeat(marker+" ", 1024))
	srv, _ := counter(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		// Far more than anyone should read: 256 MiB, or until the client
		// hangs up.
		for range 256 << 20 / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	resp, err := NewGuarded(10*time.Second, true).R().SetBody("{}").Post(srv.URL)
	got := CheckGuarded("callback", "POST outcome", resp, err, time.Minute)
	if got == nil || got.Error() != "callback: POST outcome: HTTP 500" {
		t.Fatalf("error %v, want the status only", got)
	}
	if c, _ := errand.ClassOf(got); c != errand.Transient {
		t.Fatalf("class %v", c)
	}
	if len(resp.Body()) != 0 {
		t.Fatalf("%d bytes of the answer were kept", len(resp.Body()))
	}
}

// A failure to connect is told without errand's own addresses (a DNS
// error's text names the resolver it asked).
func TestGuardedErrorsNameNoInternalAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	for target, want := range map[string][]string{
		"http://errand-callback-test.invalid/": {"host not found", "host name lookup failed", "timed out"},
		closed:                                 {"connection refused"},
	} {
		resp, err := NewGuarded(5*time.Second, true).R().SetBody("{}").Post(target)
		got := CheckGuarded("callback", "POST outcome", resp, err, time.Minute)
		ok := false
		for _, w := range want {
			ok = ok || got != nil && got.Error() == "callback: POST outcome: "+w
		}
		if !ok {
			t.Errorf("%s: %v, want one of %q", target, got, want)
		}
	}
}

// Whatever the address, the guard and the enqueue check agree with each other
// and with net/netip's own classes, and an IPv4 address is judged the same in
// every IPv6 form that reaches it.
func FuzzCallbackAddress(f *testing.F) {
	for _, s := range append(append([]string{}, internalAddrs...), publicAddrs...) {
		a := netip.MustParseAddr(s)
		f.Add(a.AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := PublicAddr(a)
		if err == nil {
			for _, x := range []netip.Addr{a, a.Unmap()} {
				if x.IsLoopback() || x.IsPrivate() || x.IsLinkLocalUnicast() || x.IsLinkLocalMulticast() ||
					x.IsInterfaceLocalMulticast() || x.IsMulticast() || x.IsUnspecified() || !x.IsGlobalUnicast() {
					t.Fatalf("%s allowed", x)
				}
			}
		} else if !errors.Is(err, ErrPrivateAddress) {
			t.Fatalf("%s: %v does not wrap ErrPrivateAddress", a, err)
		}
		if a.Is4() {
			v4 := a.As4()
			nat64 := netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 10: 0, 11: 0, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]})
			for _, other := range []netip.Addr{netip.AddrFrom16(a.As16()), nat64} {
				if (PublicAddr(other) == nil) != (err == nil) {
					t.Fatalf("%s and %s judged differently", a, other)
				}
			}
		}
		u := (&url.URL{Scheme: "http", Host: netip.AddrPortFrom(a, 80).String(), Path: "/cb"}).String()
		if (CheckCallbackURL(u, false) == nil) != (err == nil) {
			t.Fatalf("%s: the enqueue check and the guard disagree (%v)", u, err)
		}
	})
}

// Whatever the string, a URL accepted at enqueue is an http(s) URL without
// credentials whose host is a DNS name (not localhost, not a number) or a
// public IP literal.
func FuzzCallbackURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/errand?x=1", "http://127.0.0.1:8080/", "http://[::ffff:7f00:1]/",
		"http://localhost./", "http://2130706433/", "http://u:p@example.com/", "http://0x7f.1/", "http://[fe80::1%25lo]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckCallbackURL(raw, false) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q", raw)
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			if PublicAddr(a) != nil {
				t.Fatalf("accepted %q: internal address %s", raw, a)
			}
			return
		}
		if isLocalhost(host) || net.ParseIP(host) != nil {
			t.Fatalf("accepted %q: host %q", raw, host)
		}
	})
}
