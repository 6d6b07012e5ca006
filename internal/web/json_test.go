package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// decodeBody runs decode[T] on body as a handler would.
func decodeBody[T validator](body string) (T, *problem) {
	r := httptest.NewRequest("POST", "/api/users", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	v, _, p := decode[T](httptest.NewRecorder(), r)
	return v, p
}

// A body that is JSON but not an object — `null` above all, which leaves a
// pointer T nil — is a 400, not a panic in Valid.
func TestDecodeRefusesJSONThatIsNotAnObject(t *testing.T) {
	for _, body := range []string{`null`, ` null `, "\tnull\n", `[]`, `[{"email":"a@b.test"}]`, `"x"`, `123`, `true`} {
		if _, p := decodeBody[*registration](body); p == nil || p.Status != http.StatusBadRequest || p.Error != "request body must be a JSON object" {
			t.Errorf("registration %q: %+v, want 400 request body must be a JSON object", body, p)
		}
		if _, p := decodeBody[*profileChange](body); p == nil || p.Status != http.StatusBadRequest {
			t.Errorf("profile change %q: %+v, want 400", body, p)
		}
	}
	// Malformed JSON keeps the decoder's own message; an object is decoded.
	if _, p := decodeBody[*registration](`{"email":`); p == nil || p.Status != http.StatusBadRequest || !strings.HasPrefix(p.Error, "malformed JSON") {
		t.Errorf("malformed: %+v", p)
	}
	v, p := decodeBody[*registration](` {"email":"ada@shop.test","first_name":"Ada","last_name":"L","password":"correct horse"}`)
	if p != nil || v == nil || v.Email != "ada@shop.test" {
		t.Errorf("a good body: %+v, %+v", v, p)
	}
}

// Every decoder of a request body: whatever the bytes, an answer, never a
// panic, and nothing accepted that is not an object.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"x"`))
	f.Add([]byte(`123`))
	f.Add([]byte(`{"email":"ada@shop.test","first_name":"Ada","last_name":"L","password":"correct horse"}`))
	f.Add([]byte(`{"first_name":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		obj := json.Valid(body) && strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{")
		if v, p := decodeBody[*registration](string(body)); p == nil && (v == nil || !obj) {
			t.Fatalf("registration accepted %q", body)
		}
		if v, p := decodeBody[*profileChange](string(body)); p == nil && (v == nil || !obj) {
			t.Fatalf("profile change accepted %q", body)
		}
	})
}
