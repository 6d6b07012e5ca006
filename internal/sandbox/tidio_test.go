package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/config"
)

// wireServer serves a sandbox with the test credentials errand's tests use.
func wireServer(t *testing.T, edit func(*config.Config)) (*Sandbox, *httptest.Server) {
	t.Helper()
	cfg, err := config.Load("", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CRM.ClientID, cfg.CRM.ClientSecret = "tidio-client-id", "tidio-client-secret"
	cfg.Notify.TelegramBotToken = "123456:test-bot-token"
	if edit != nil {
		edit(cfg)
	}
	s := New(cfg)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// wireCall sends one request and returns the status, headers and body.
func wireCall(t *testing.T, method, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

var tidioAuth = []string{"X-Tidio-Openapi-Client-Id", "tidio-client-id", "X-Tidio-Openapi-Client-Secret", "tidio-client-secret"}

func TestTidioWireFormat(t *testing.T) {
	s, srv := wireServer(t, nil)
	u := srv.URL + "/contacts"

	if code, _, body := wireCall(t, "GET", u, "", "X-Tidio-Openapi-Client-Id", "tidio-client-id"); code != 401 || !strings.Contains(body, `"errors":[{"code":"unauthorized"`) {
		t.Fatalf("without the secret: %d %s", code, body)
	}
	code, _, body := wireCall(t, "POST", u, `{"email":"ada@shop.test","first_name":"Ada"}`, tidioAuth...)
	var created struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := wireCall(t, "POST", u, `{"email":"ADA@shop.test"}`, tidioAuth...); code != 422 || !strings.Contains(body, "contact_already_exists") {
		t.Fatalf("a second contact with the same email: %d %s", code, body)
	}
	if code, _, body := wireCall(t, "POST", u, `{"email":"not-an-email"}`, tidioAuth...); code != 422 || !strings.Contains(body, "invalid_email") {
		t.Fatalf("an invalid email: %d %s", code, body)
	}
	code, _, body = wireCall(t, "GET", u+"?email=ada%40shop.test", "", tidioAuth...)
	var page struct {
		Contacts []map[string]any `json:"contacts"`
		Meta     map[string]any   `json:"meta"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.Contacts) != 1 || page.Contacts[0]["id"] != created.ID {
		t.Fatalf("find by email: %d %s", code, body)
	}
	if _, ok := page.Meta["cursor"]; !ok || page.Meta["limit"] == nil {
		t.Fatalf("meta: %v", page.Meta)
	}
	if code, _, body := wireCall(t, "PATCH", u+"/"+created.ID, `{"last_name":"King"}`, tidioAuth...); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if code, _, _ := wireCall(t, "PATCH", u+"/nope", `{"last_name":"King"}`, tidioAuth...); code != 404 {
		t.Fatalf("update of an unknown contact: %d", code)
	}
	if c := s.TidioContacts(); len(c) != 1 || c[0]["last_name"] != "King" || c[0]["first_name"] != "Ada" {
		t.Fatalf("contacts: %v", c)
	}

	s.AddFault(Fault{Service: Tidio, Throttle: true, Count: 1})
	code, h, body := wireCall(t, "GET", u, "", tidioAuth...)
	if code != 429 || h.Get("Retry-After") != "" || !strings.Contains(body, `"errors"`) {
		t.Fatalf("throttled: %d Retry-After=%q %s; Tidio sends no Retry-After", code, h.Get("Retry-After"), body)
	}
}
