package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The lockout of failed dashboard logins: after authFailures wrong
// credentials from one client within authWindow, every attempt from it
// (the right one too) gets 429 for authWindow. authTracked bounds the memory
// spent remembering clients.
const (
	authFailures = 10
	authWindow   = time.Minute
	authTracked  = 4096
)

// dashboardAuth guards the dashboard, which has no authentication of its own.
// In order: the Host must be errand's own (http.public_url's host or a
// loopback name), so a DNS-rebound page cannot reach it; a state-changing
// request from another origin is refused (CSRF); then basic auth with
// dashboard.username/password, compared in constant time, with failed
// attempts limited per client; with no password set, only requests from
// loopback are let in.
func (s *Server) dashboardAuth(next http.Handler) http.Handler {
	cfg := s.Config.Dashboard
	wantUser := sha256.Sum256([]byte(cfg.Username))
	wantPass := sha256.Sum256([]byte(cfg.Password))
	publicHost, publicOrigin := "", ""
	if u, err := url.Parse(s.Config.HTTP.PublicURL); err == nil && u.Host != "" {
		publicHost = normalHost(u.Hostname())
		publicOrigin = u.Scheme + "://" + u.Host
	}
	csrf := http.NewCrossOriginProtection()
	if publicOrigin != "" {
		// errand's own address is never cross-origin, even when a proxy
		// rewrites the Host it sees.
		_ = csrf.AddTrustedOrigin(publicOrigin)
	}
	limit := newFailureLimiter(authFailures, authWindow, authTracked)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		if !dashboardHost(r.Host, publicHost) {
			http.Error(w, "dashboard: unknown host; open it at http.public_url or on localhost", http.StatusForbidden)
			return
		}
		if err := csrf.Check(r); err != nil {
			http.Error(w, "dashboard: cross-origin request refused", http.StatusForbidden)
			return
		}
		if cfg.Password == "" {
			if !isLoopback(r.RemoteAddr) {
				http.Error(w, "dashboard: set dashboard.password to open the dashboard beyond this machine", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		client := clientKey(r.RemoteAddr)
		now := time.Now()
		if wait := limit.locked(client, now); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			http.Error(w, "dashboard: too many failed logins; try again later", http.StatusTooManyRequests)
			return
		}
		user, pass, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		// Hashing first makes the comparison constant-time whatever the lengths.
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			// A request without credentials is a browser asking for the
			// login prompt, not a guess.
			if ok {
				limit.fail(client, now)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="errand dashboard", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		limit.forget(client)
		next.ServeHTTP(w, r)
	})
}

// dashboardHost reports whether host (a Host header) names errand itself:
// publicHost (http.public_url's host) or a loopback name, with any port. A
// DNS-rebound page sends its own name, which is neither.
func dashboardHost(host, publicHost string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "" {
		return false
	}
	if host == "localhost" || host == publicHost {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalHost lowercases a host name and drops the root's trailing dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientKey names the client a failed login is counted against: its IP, or
// for IPv6 its /64, since one host usually holds a whole /64.
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// failureLimiter counts failed attempts per client in a fixed window and
// locks a client out for a whole window once it reaches max. It remembers at
// most capacity clients, so a caller with many addresses cannot grow it
// without bound.
type failureLimiter struct {
	max      int
	window   time.Duration
	capacity int

	mu      sync.Mutex
	clients map[string]failures
}

type failures struct {
	count int
	until time.Time // the end of the window, or of the lockout once count reaches max
}

func newFailureLimiter(max int, window time.Duration, capacity int) *failureLimiter {
	return &failureLimiter{max: max, window: window, capacity: capacity, clients: map[string]failures{}}
}

// locked returns how long client is still locked out; zero when it is not.
func (l *failureLimiter) locked(client string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.clients[client]
	if !ok || f.count < l.max || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// fail counts a failed attempt by client.
func (l *failureLimiter) fail(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.clients[client]
	if !ok || !now.Before(f.until) {
		if !ok && len(l.clients) >= l.capacity {
			l.evict(now)
		}
		f = failures{until: now.Add(l.window)}
	}
	f.count++
	if f.count == l.max {
		f.until = now.Add(l.window)
	}
	l.clients[client] = f
}

// forget clears client's failures after it logged in.
func (l *failureLimiter) forget(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.clients, client)
}

// evict makes room for one more client: it drops the expired entries, and
// when none has expired, the one that expires first among those not locked
// out, so a caller with many addresses cannot flush the lockouts. l.mu is
// held.
func (l *failureLimiter) evict(now time.Time) {
	var victim string
	var victimF failures
	for c, f := range l.clients {
		if !now.Before(f.until) {
			delete(l.clients, c)
			continue
		}
		// Prefer a client under the limit; then the earliest to expire.
		better := victim == "" ||
			(f.count < l.max) && (victimF.count >= l.max) ||
			((f.count < l.max) == (victimF.count < l.max)) && f.until.Before(victimF.until)
		if better {
			victim, victimF = c, f
		}
	}
	if len(l.clients) >= l.capacity && victim != "" {
		delete(l.clients, victim)
	}
}
