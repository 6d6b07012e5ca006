package tidiotest_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/tidio"
	"github.com/errandhq/errand/internal/tidio/tidiotest"
)

var auth = []string{"X-Tidio-Openapi-Client-Id", "tidio-client-id", "X-Tidio-Openapi-Client-Secret", "tidio-client-secret"}

func TestTidioWireFormat(t *testing.T) {
	fake := tidiotest.New(tidio.Config{ClientID: "tidio-client-id", ClientSecret: "tidio-client-secret"})
	sb := sandbox.Of(fake)
	call := func(method, path, body string, header ...string) (int, string, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		sb.Handler().ServeHTTP(w, r)
		return w.Code, w.Header().Get("Retry-After"), w.Body.String()
	}
	u := "/contacts"

	if code, _, body := call("GET", u, "", "X-Tidio-Openapi-Client-Id", "tidio-client-id"); code != 401 || !strings.Contains(body, `"errors":[{"code":"unauthorized"`) {
		t.Fatalf("without the secret: %d %s", code, body)
	}
	code, _, body := call("POST", u, `{"email":"ada@shop.test","first_name":"Ada"}`, auth...)
	var created struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, body := call("POST", u, `{"email":"ADA@shop.test"}`, auth...); code != 422 || !strings.Contains(body, "contact_already_exists") {
		t.Fatalf("a second contact with the same email: %d %s", code, body)
	}
	if code, _, body := call("POST", u, `{"email":"not-an-email"}`, auth...); code != 422 || !strings.Contains(body, "invalid_email") {
		t.Fatalf("an invalid email: %d %s", code, body)
	}
	code, _, body = call("GET", u+"?email=ada%40shop.test", "", auth...)
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
	if code, _, body := call("PATCH", u+"/"+created.ID, `{"last_name":"King"}`, auth...); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if code, _, _ := call("PATCH", u+"/nope", `{"last_name":"King"}`, auth...); code != 404 {
		t.Fatalf("update of an unknown contact: %d", code)
	}
	if c := fake.Contacts(); len(c) != 1 || c[0]["last_name"] != "King" || c[0]["first_name"] != "Ada" {
		t.Fatalf("contacts: %v", c)
	}

	sb.AddFault(sandbox.Fault{Service: tidiotest.Service, Throttle: true, Count: 1})
	code, retryAfter, body := call("GET", u, "", auth...)
	if code != 429 || retryAfter != "" || !strings.Contains(body, `"errors"`) {
		t.Fatalf("throttled: %d Retry-After=%q %s; Tidio sends no Retry-After", code, retryAfter, body)
	}
}

// A project without credentials configured refuses every call, whatever is
// sent: an empty secret must not match an empty header.
func TestTidioWithoutCredentialsRefusesEveryCall(t *testing.T) {
	r := httptest.NewRequest("GET", "/contacts", nil)
	r.Header.Set("X-Tidio-Openapi-Client-Id", "")
	w := httptest.NewRecorder()
	sandbox.Of(tidiotest.New(tidio.Config{})).Handler().ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
