package dashview

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/redisconn"
	"github.com/errandhq/errand/jobs"
	"github.com/hibiken/asynqmon"
)

// newView is the view over the asynqmon of go.mod at /monitoring. Nothing
// here reaches Redis: the page, the script and the fonts are asynqmon's
// files and errand's.
func newView(t *testing.T) *View {
	t.Helper()
	cfg := config.Default()
	dash := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redisconn.ConnOpt(cfg.Redis)})
	t.Cleanup(func() { _ = dash.Close() })
	reg := job.NewRegistry(cfg)
	jobs.Register(reg)
	v, err := New(dash, Options{Path: "/monitoring", Asynqmon: dash, Registry: reg})
	if err != nil {
		t.Fatalf("the view does not fit the asynqmon in go.mod: %v", err)
	}
	return v
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// Every change to asynqmon's script applies to the asynqmon in go.mod (New
// fails otherwise, naming the change), and the script served carries the
// timeline links and errand's labels.
func TestScriptCarriesTimelineLinksAndAttempts(t *testing.T) {
	v := newView(t)
	w := get(t, v, v.bundle)
	js := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/javascript") {
		t.Fatalf("GET %s: %d %s", v.bundle, w.Code, w.Header().Get("Content-Type"))
	}
	if n := strings.Count(js, `"/monitoring/timeline?job="+encodeURIComponent(`); n != 8 {
		t.Errorf("%d timeline links in the script, want 8: the task view and the 7 task lists", n)
	}
	for _, gone := range []string{`"Retry:"`, `label:"Retried"`, `label:"Max Retry"`} {
		if strings.Contains(js, gone) {
			t.Errorf("the script still shows %s", gone)
		}
	}
}

// The page links no other host (asynqmon's links Google Fonts), links
// errand's Roboto, and is served with a CSP whose nonce every script has.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	v := newView(t)
	w := get(t, v, "/monitoring/queues/default")
	page := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("GET the page: %d", w.Code)
	}
	if strings.Contains(page, "googleapis") || regexp.MustCompile(`(href|src)="(https?:)?//`).MatchString(page) {
		t.Errorf("the page links another host:\n%s", page)
	}
	if !strings.Contains(page, `href="/monitoring/errand/fonts/roboto.css"`) {
		t.Errorf("the page does not link errand's Roboto:\n%s", page)
	}
	csp := w.Header().Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'self' 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "font-src 'self'") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
	scripts, nonced := strings.Count(page, "<script"), strings.Count(page, `<script nonce="`+m[1]+`"`)
	if scripts == 0 || scripts != nonced {
		t.Errorf("%d scripts, %d with the CSP's nonce", scripts, nonced)
	}
	if again := get(t, v, "/monitoring/").Header().Get("Content-Security-Policy"); again == csp {
		t.Error("two pages got the same nonce")
	}
}

// The stylesheet's every font is served, and the license beside them.
func TestFontsAndLicenseServed(t *testing.T) {
	v := newView(t)
	css := get(t, v, "/monitoring/errand/fonts/roboto.css")
	if css.Code != http.StatusOK || css.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("roboto.css: %d %s", css.Code, css.Header().Get("Content-Type"))
	}
	urls := regexp.MustCompile(`url\('([^']+)'\)`).FindAllStringSubmatch(css.Body.String(), -1)
	if len(urls) != 8 {
		t.Errorf("%d fonts in roboto.css, want 8 (4 weights, 2 subsets)", len(urls))
	}
	for _, u := range urls {
		w := get(t, v, "/monitoring/errand/fonts/"+u[1])
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "font/woff2" || !strings.HasPrefix(w.Body.String(), "wOF2") {
			t.Errorf("%s: %d %s", u[1], w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := get(t, v, "/monitoring/errand/fonts/LICENSE"); !strings.Contains(w.Body.String(), "Apache License") {
		t.Errorf("LICENSE: %d %.100s", w.Code, w.Body.String())
	}
	for _, bad := range []string{"/monitoring/errand/fonts/", "/monitoring/errand/fonts/../dashview.go", "/monitoring/errand/fonts/nope.woff2"} {
		if w := get(t, v, bad); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", bad, w.Code)
		}
	}
}

// A task as asynq describes it, corrected to errand's words.
func TestTaskShowsErrandsAttemptsAndTimeout(t *testing.T) {
	v := newView(t)
	for _, c := range []struct {
		state          string
		retried        int
		attempts, max  any
		timeoutSeconds int
		typ            string
	}{
		{"archived", 2, 3, 3, 60, "user:welcome_email"}, // failed on its third attempt
		{"completed", 0, 1, 3, 60, "user:welcome_email"},
		{"retry", 1, 1, 3, 60, "user:welcome_email"},      // one failure counted, waiting
		{"active", 3, 3, 3, 60, "user:welcome_email"},     // a lost worker's extra attempt is not shown
		{"pending", 4, 4, "unlimited", 0, "ops:escalate"}, // retries until sent
	} {
		task := map[string]any{"type": c.typ, "state": c.state, "retried": json.Number(itoa(c.retried)),
			"max_retry": json.Number("1048576"), "timeout_seconds": json.Number("65")}
		v.correctTask(task, "")
		if task["retried"] != c.attempts || task["max_retry"] != c.max {
			t.Errorf("%s %s retried %d: shown %v/%v, want %v/%v", c.typ, c.state, c.retried, task["retried"], task["max_retry"], c.attempts, c.max)
		}
		def, _ := v.o.Registry.Lookup(c.typ)
		if task["timeout_seconds"] != int(def.Timeout/time.Second) {
			t.Errorf("%s: timeout %v, want the type's %s", c.typ, task["timeout_seconds"], def.Timeout)
		}
	}
	unknown := map[string]any{"type": "someone:else", "retried": json.Number("2"), "max_retry": json.Number("25")}
	v.correctTask(unknown, "retry")
	if unknown["retried"] != json.Number("2") || unknown["max_retry"] != json.Number("25") {
		t.Errorf("a type errand does not know was changed: %v", unknown)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestResultIsReadableOrNone(t *testing.T) {
	for in, want := range map[string]string{"": "none", `{"ok":true}`: `{"ok":true}`, "\x00\x01\xff": "3 bytes, not text"} {
		if got := Result("t", []byte(in)); got != want {
			t.Errorf("Result(%q) = %q, want %q", in, got, want)
		}
	}
}
