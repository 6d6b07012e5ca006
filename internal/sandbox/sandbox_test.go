package sandbox_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/slack/slacktest"
	"github.com/errandhq/errand/internal/tidio"
)

func testConfig() *config.Config {
	c := config.Default()
	c.CRM = tidio.Config{ClientID: "tidio-id", ClientSecret: "tidio-secret"}
	c.Notify.Reps = map[string]config.Rep{"alice": {SlackWebhookURL: "https://hooks.slack.com/services/T0/B0/alice"}}
	return c
}

func do(t *testing.T, h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// New serves one fake per field, and the fault endpoint takes exactly the
// services served.
func TestNewServesEveryFake(t *testing.T) {
	sb := sandbox.New(testConfig())
	fields := reflect.ValueOf(sb).Elem()
	var exported int
	for i := range fields.NumField() {
		if !fields.Type().Field(i).IsExported() {
			continue
		}
		exported++
		f, ok := fields.Field(i).Interface().(sandbox.Fake)
		if !ok || fields.Field(i).IsNil() {
			t.Fatalf("field %s is not a fake New made", fields.Type().Field(i).Name)
		}
		if !strings.EqualFold(fields.Type().Field(i).Name, f.Service()) {
			t.Errorf("field %s holds the %s fake", fields.Type().Field(i).Name, f.Service())
		}
	}
	if got := sb.Services(); len(got) != exported {
		t.Fatalf("serves %v, but has %d fakes", got, exported)
	}
	for _, service := range sb.Services() {
		if w := do(t, sb.Handler(), "POST", "/_sandbox/faults", `{"service":"`+service+`","status":500,"count":1}`); w.Code != 201 {
			t.Errorf("fault for %s: %d %s", service, w.Code, w.Body.String())
		}
	}
	w := do(t, sb.Handler(), "POST", "/_sandbox/faults", `{"service":"mailchimp","status":500}`)
	if w.Code != 422 || !strings.Contains(w.Body.String(), "service must be one of "+strings.Join(sb.Services(), ", ")) {
		t.Fatalf("unknown service: %d %s", w.Code, w.Body.String())
	}
}

// The fakes take the credentials in the config New was given, and no other.
func TestNewChecksTheConfiguredCredentials(t *testing.T) {
	h := sandbox.New(testConfig()).Handler()
	if w := do(t, h, "GET", "/contacts", "", "X-Tidio-Openapi-Client-Id", "tidio-id", "X-Tidio-Openapi-Client-Secret", "tidio-secret"); w.Code != 200 {
		t.Errorf("Tidio with the configured credentials: %d %s", w.Code, w.Body.String())
	}
	if w := do(t, h, "GET", "/contacts", "", "X-Tidio-Openapi-Client-Id", "tidio-id", "X-Tidio-Openapi-Client-Secret", "guess"); w.Code != 401 {
		t.Errorf("Tidio with another secret: %d", w.Code)
	}
	if w := do(t, h, "POST", "/services/T0/B0/alice", `{"text":"hi"}`); w.Code != 200 {
		t.Errorf("alice's webhook: %d %s", w.Code, w.Body.String())
	}
	if w := do(t, h, "POST", "/services/T0/B0/mallory", `{"text":"hi"}`); w.Code != 404 {
		t.Errorf("a webhook no rep has: %d", w.Code)
	}
}

func TestFaultsAndTheCallLog(t *testing.T) {
	sb := sandbox.New(testConfig())
	h := sb.Handler()
	auth := []string{"X-Tidio-Openapi-Client-Id", "tidio-id", "X-Tidio-Openapi-Client-Secret", "tidio-secret"}

	sb.AddFault(sandbox.Fault{Service: "tidio", Status: 503, RetryAfter: 4, Count: 1})
	if w := do(t, h, "GET", "/contacts", "", auth...); w.Code != 503 || w.Header().Get("Retry-After") != "4" {
		t.Fatalf("injected 503: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do(t, h, "GET", "/contacts", "", auth...); w.Code != 200 {
		t.Fatalf("after a one-call fault: %d", w.Code)
	}
	// A fake without its own way of throttling answers 429 with Retry-After.
	sb.AddFault(sandbox.Fault{Service: "slack", Throttle: true})
	for range 2 {
		if w := do(t, h, "POST", "/services/T0/B0/alice", `{"text":"hi"}`); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("throttled Slack: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
		}
	}
	sb.ClearFaults()
	if w := do(t, h, "POST", "/services/T0/B0/alice", `{"text":"hi"}`); w.Code != 200 {
		t.Fatalf("after ClearFaults: %d", w.Code)
	}
	if n := len(sb.Slack.Messages()); n != 1 {
		t.Fatalf("%d messages; injected failures must not reach the fake", n)
	}

	calls := sb.Calls("")
	var notes []string
	for _, c := range calls {
		notes = append(notes, c.Service+" "+c.Note)
	}
	want := []string{"tidio injected failure", "tidio 0 contact(s)", "slack injected throttling", "slack injected throttling", "slack "}
	if !reflect.DeepEqual(notes, want) {
		t.Fatalf("call log %q, want %q", notes, want)
	}
	if n := len(sb.Calls("tidio")); n != 2 {
		t.Fatalf("%d Tidio calls", n)
	}
}

// A dropped response does the work and closes the connection unanswered:
// the caller cannot tell it succeeded.
func TestDropResponse(t *testing.T) {
	sb := sandbox.New(testConfig())
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	sb.AddFault(sandbox.Fault{Service: "slack", DropResponse: true, Count: 1})
	resp, err := http.Post(srv.URL+"/services/T0/B0/alice", "application/json", strings.NewReader(`{"text":"hi"}`))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("got an answer: %d %s", resp.StatusCode, body)
	}
	if n := len(sb.Slack.Messages()); n != 1 {
		t.Fatalf("%d messages; the work must be done", n)
	}
	if c := sb.Calls("slack"); len(c) != 1 || c[0].Note != "(response dropped)" {
		t.Fatalf("calls %+v", c)
	}
}

// A fault with For applies to every call from its first until For has
// passed, then is gone: a service throttling for the rest of its window.
func TestFaultForLastsFromItsFirstCall(t *testing.T) {
	s := sandbox.Of(slacktest.New("https://hooks.slack.com/services/T0/B0/x"))
	post := func() int {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/services/T0/B0/x", strings.NewReader(`{"text":"hi"}`)))
		return w.Code
	}
	s.AddFault(sandbox.Fault{Service: slacktest.Service, Status: 429, For: time.Second})
	if a, b := post(), post(); a != 429 || b != 429 {
		t.Fatalf("within its time: %d, %d", a, b)
	}
	time.Sleep(1100 * time.Millisecond)
	if code := post(); code != 200 {
		t.Fatalf("after its time: %d", code)
	}
}
