package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/config"
)

// tokenGate is requireToken over a handler that answers 200, for tokens.
func tokenGate(tokens ...string) http.Handler {
	s := &Server{Config: &config.Config{API: config.API{Tokens: tokens}}}
	return s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

func authorized(h http.Handler, auth string) bool {
	req := httptest.NewRequest("POST", "/api/jobs", nil)
	req.Header["Authorization"] = []string{auth}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code == http.StatusOK
}

// Config refuses an empty token, but the check does not rely on it: an
// empty token configured by other means still opens nothing, not even to a
// value that trims to empty.
func TestEmptyTokenNeverMatches(t *testing.T) {
	h := tokenGate("")
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer \u00a0", "Bearer \t", "bearer  ", "Bearer \u3000"} {
		if authorized(h, auth) {
			t.Errorf("Authorization %q was let in", auth)
		}
	}
}

// Only "Bearer <token>" exactly opens, the scheme in any case (RFC 6750);
// any padding or look-alike of the token does not.
func FuzzBearerToken(f *testing.F) {
	const token = "first-token-0123456789"
	h := tokenGate(token, "second-token-0123456789")
	for _, seed := range []string{"Bearer " + token, "bearer " + token, "BEARER " + token, "Bearer  " + token,
		"Bearer " + token + " ", "Bearer \u00a0" + token, "Bearer " + token + "\u00a0", "Basic " + token, token, "Bearer", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		scheme, rest, _ := strings.Cut(auth, " ")
		want := strings.EqualFold(scheme, "Bearer") && (rest == token || rest == "second-token-0123456789")
		if got := authorized(h, auth); got != want {
			t.Fatalf("Authorization %q: let in %v, want %v", auth, got, want)
		}
	})
}
