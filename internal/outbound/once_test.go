package outbound

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A request whose answer is lost on a kept-alive connection goes out once:
// net/http would send a GET again by itself, unseen by the failure policy.
// The caller gets the error; the retry, if any, is the job's.
func TestLostAnswerIsNotSentAgain(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/lose") {
			// The request was read and acted on; the answer never comes.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(srv.URL, 5*time.Second)
	for _, method := range []string{"GET", "HEAD", "DELETE", "PUT", "POST"} {
		// A first call leaves a connection to reuse: net/http re-sends only
		// on a reused one.
		if resp, err := c.R().Execute(method, "/ok"); err != nil || resp.StatusCode() != http.StatusNoContent {
			t.Fatalf("%s /ok: %v %v", method, resp, err)
		}
		r := c.R()
		if method == "PUT" || method == "POST" {
			r.SetBody(map[string]string{"a": "b"}).SetHeader("Idempotency-Key", "k") // re-sendable to net/http
		}
		if _, err := r.Execute(method, "/lose"); err == nil {
			t.Fatalf("%s /lose: no error for a lost answer", method)
		}
		mu.Lock()
		n := got[method+" /lose"]
		mu.Unlock()
		if n != 1 {
			t.Errorf("%s /lose reached the server %d times, want once", method, n)
		}
	}
	// The request went out as it would have: no body, no length.
	var seen http.Header
	var length int64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, length = r.Header.Clone(), r.ContentLength
	})
	if _, err := c.R().Get("/plain"); err != nil {
		t.Fatal(err)
	}
	if length != 0 || seen.Get("Content-Length") != "" || seen.Get("Transfer-Encoding") != "" {
		t.Fatalf("a GET went out with length %d, headers %v", length, seen)
	}
}
