package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
)

// dashboardAuth guards the dashboard, which has no authentication of its own:
// basic auth with dashboard.username/password, compared in constant time; with
// no password set, only requests from loopback are let in.
func (s *Server) dashboardAuth(next http.Handler) http.Handler {
	cfg := s.Config.Dashboard
	wantUser := sha256.Sum256([]byte(cfg.Username))
	wantPass := sha256.Sum256([]byte(cfg.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		if cfg.Password == "" {
			if !isLoopback(r.RemoteAddr) {
				http.Error(w, "dashboard: set dashboard.password to open the dashboard beyond this machine", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		// Hashing first makes the comparison constant-time whatever the lengths.
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="errand dashboard", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
