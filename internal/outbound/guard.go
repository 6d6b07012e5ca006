package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/errandhq/errand"
	"github.com/go-resty/resty/v2"
)

// This file is the client for URLs that a caller of errand chose (callbacks):
// unlike a configured service, such a URL may be aimed at errand's own network,
// so where it connects, what it follows and what it reads are all bounded.

// ErrPrivateAddress is why a guarded client refused to connect: the address
// is loopback, private, link-local or otherwise not on the public internet.
var ErrPrivateAddress = errors.New("not a public address")

// MaxGuardedAnswer is how much of an answer a guarded client reads before it
// drops the connection: enough to keep a connection reusable after a short
// answer, too little to make errand download anything.
const MaxGuardedAnswer = 4 << 10

// MaxCallbackURL bounds a callback URL's length; it is stored per job.
const MaxCallbackURL = 2048

// refused4 are the IPv4 ranges that are not public unicast addresses
// (IANA IPv4 Special-Purpose Address Registry, plus multicast and reserved).
var refused4 = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
}

// IPv6 forms that carry an IPv4 address in their last 32 bits and reach it:
// the address is as public as the IPv4 address it carries.
var embeds4 = []netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix
}

// global6 is the only IPv6 space handed out as global unicast; anything
// outside it (loopback, unique-local fc00::/7, link-local, site-local,
// multicast, IPv4-compatible ::/96, discard 100::/64, NAT64 local-use
// 64:ff9b:1::/48, SRv6 5f00::/16) is refused.
var global6 = netip.MustParsePrefix("2000::/3")

// compatible4 is the deprecated IPv4-compatible form ::a.b.c.d.
var compatible4 = netip.MustParsePrefix("::/96")

// refused6 are the parts of global6 that are not public unicast addresses.
var refused6 = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (Teredo, benchmarking, ORCHID)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

// PublicAddr returns nil when a is a public unicast address, and otherwise an
// error wrapping ErrPrivateAddress that says what a is. IPv4 addresses carried
// inside IPv6 (mapped ::ffff:a.b.c.d, translated, NAT64 64:ff9b::/96) are
// judged as the IPv4 address they reach.
func PublicAddr(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: no address", ErrPrivateAddress)
	}
	shown := a
	a = a.WithZone("")
	if a.Is4In6() {
		return judge4(shown, a.Unmap())
	}
	if a.Is4() {
		return judge4(shown, a)
	}
	for _, p := range embeds4 {
		if p.Contains(a) {
			b := a.As16()
			return judge4(shown, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
	}
	if !global6.Contains(a) {
		return refused(shown, ipv6Kind(a))
	}
	for _, r := range refused6 {
		if r.prefix.Contains(a) {
			return refused(shown, r.what)
		}
	}
	return nil
}

func judge4(shown, a netip.Addr) error {
	for _, r := range refused4 {
		if r.prefix.Contains(a) {
			return refused(shown, r.what)
		}
	}
	return nil
}

func refused(a netip.Addr, what string) error {
	return fmt.Errorf("%w: %s is %s", ErrPrivateAddress, a, what)
}

// ipv6Kind names what an address outside global unicast is, for the error.
func ipv6Kind(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate():
		return "unique-local"
	case compatible4.Contains(a):
		return "IPv4-compatible (deprecated)"
	default:
		return "not global unicast"
	}
}

// CheckCallbackURL checks a callback URL as given, without resolving names
// (the guarded client checks every address when it connects): an absolute
// http or https URL with a host, no user name or password, and — unless
// allowPrivate — a host that is neither localhost nor an IP literal that
// PublicAddr refuses.
func CheckCallbackURL(raw string, allowPrivate bool) error {
	if len(raw) > MaxCallbackURL {
		return fmt.Errorf("must be at most %d characters", MaxCallbackURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("must not carry a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has a port outside 1-65535")
		}
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if err := checkHostName(host); err != nil {
			return err
		}
		if !allowPrivate && isLocalhost(host) {
			return errors.New("must not point at localhost")
		}
		return nil
	}
	if !allowPrivate {
		if err := PublicAddr(addr); err != nil {
			return fmt.Errorf("must not point at a non-public address (%s)", strings.TrimPrefix(err.Error(), ErrPrivateAddress.Error()+": "))
		}
	}
	return nil
}

// checkHostName refuses hosts that are not DNS names. A name whose last label
// is a number or 0x… is an IPv4 address in another spelling (2130706433,
// 127.1, 0x7f.1) that some resolvers read as one; no top-level domain is
// numeric.
func checkHostName(host string) error {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return errors.New("has an invalid host name")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("has an invalid host name")
		}
		for _, c := range l {
			if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return errors.New("has an invalid host name (IDN hosts go in their xn-- form)")
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return errors.New("has a numeric host that is not a valid IP address")
	}
	return nil
}

// isLocalhost reports whether host is localhost or a name under it, which
// resolvers answer with loopback (RFC 6761).
func isLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// guardedTransports are shared, as the services' transport is, so that a
// receiver's connection is reused across jobs; one checks addresses, one
// (api.allow_private_callbacks) does not.
var guardedTransports = [2]http.RoundTripper{guardedTransport(false), guardedTransport(true)}

func guardedTransport(allowPrivate bool) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		// Control runs on the resolved address just before each connect, so
		// neither a DNS answer nor a name that changes between checks can
		// steer the connection inward.
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrPrivateAddress, address, err)
			}
			return PublicAddr(ap.Addr())
		}
	}
	t := &http.Transport{
		// No proxy, whatever the environment says: through a proxy the
		// connect check would only see the proxy's address.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return cappedAnswer{t}
}

// cappedAnswer reads at most MaxGuardedAnswer bytes of an answer and drops
// the rest, and hands on no body at all: the receiver's words never become
// part of an error that its sender can read back (GET /api/jobs).
type cappedAnswer struct{ next http.RoundTripper }

func (c cappedAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxGuardedAnswer))
	_ = resp.Body.Close()
	resp.Body = http.NoBody
	resp.ContentLength = 0
	return resp, nil
}

// NewGuarded returns a client for URLs that callers of errand chose: it
// connects only to public addresses (unless allowPrivate, for development),
// never through a proxy, follows no redirect (a 3xx is the answer), and
// keeps only the status of the answer. Requests time out after timeout (15 s
// when zero); nothing is retried here.
func NewGuarded(timeout time.Duration, allowPrivate bool) *resty.Client {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	t := guardedTransports[0]
	if allowPrivate {
		t = guardedTransports[1]
	}
	hc := &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c := resty.NewWithClient(hc).
		SetTimeout(timeout).
		SetRetryCount(0).
		SetHeader("User-Agent", UserAgent)
	c.SetLogger(quiet{})
	return c
}

// CheckGuarded is Check for a guarded client's call, except that a failure
// to get an answer is told in a few words: a network error's own text can
// carry errand's internal addresses (its DNS server's, a local interface's),
// and a guarded call's error is read back by whoever chose the URL.
func CheckGuarded(service, op string, resp *resty.Response, err error, fallback time.Duration) error {
	if err != nil {
		return errand.TransientError(fmt.Errorf("%s: %s: %s", service, op, netFailure(err)))
	}
	return Check(service, op, resp, nil, fallback)
}

// netFailure names a failed connection's cause without its details.
func netFailure(err error) string {
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "host not found"
	case errors.As(err, &dns):
		return "host name lookup failed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &cert):
		return "TLS certificate not accepted"
	default:
		return "connection failed"
	}
}
