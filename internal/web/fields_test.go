package web

import (
	"net/http"
	"testing"
)

// A misspelt field is a 422 naming it and the field meant, with nothing
// stored or queued: dropped silently, its value would be lost (a
// registration's sales rep, a job's delay).
func TestUnknownJSONFieldIs422NamingIt(t *testing.T) {
	s := startWebStack(t, func(pw string) (string, error) { return "hash:" + pw, nil }, nil)
	auth := []string{"Authorization", "Bearer " + webTestToken}
	for _, tc := range []struct {
		method, path, body string
		header             []string
		field, want        string
	}{
		{"POST", "/api/users", `{"email":"ada@shop.test","first_name":"Ada","last_name":"L","password":"correct horse battery","salesrep":"bob"}`,
			nil, "salesrep", "unknown field; did you mean sales_rep?"},
		{"PATCH", "/api/users/1", `{"first_name":"Ada","lastname":"King"}`, auth, "lastname", "unknown field; did you mean last_name?"},
		{"POST", "/api/jobs", `{"type":"ops:noop","payload":{},"dealy":"5s"}`, auth, "dealy", "unknown field; did you mean delay?"},
	} {
		resp, out := s.do(tc.method, tc.path, tc.body, tc.header...)
		fields, _ := out["fields"].(map[string]any)
		if resp.StatusCode != http.StatusUnprocessableEntity || fields[tc.field] != tc.want || len(fields) != 1 {
			t.Errorf("%s %s: %d %v, want 422 with only %s: %s", tc.method, tc.path, resp.StatusCode, out, tc.field, tc.want)
		}
	}
	if n, _, err := s.store.OutboxBacklog(t.Context()); err != nil || n != 0 {
		t.Fatalf("%d jobs queued (%v), want none", n, err)
	}
	// Nothing was stored: the same registration, spelt right, is the first.
	if resp, out := s.do("POST", "/api/users", `{"email":"ada@shop.test","first_name":"Ada","last_name":"L","password":"correct horse battery","Sales_Rep":"bob"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the registration spelt right (a field's case as encoding/json takes it): %d %v", resp.StatusCode, out)
	}
}
