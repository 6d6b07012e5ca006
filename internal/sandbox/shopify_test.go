package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/config"
)

// The Shopify fake's own checks, before any GraphQL is read.
func TestShopifyFakeRefusesWhatShopifyRefuses(t *testing.T) {
	sb := New(&config.Config{Shopify: config.Shopify{AccessToken: "shpat_ok", APIVersion: "2025-07"}})
	sb.ShopifyAddOrder(1, 1)
	for _, tc := range []struct {
		name, path, token, contentType, body string
		status                               int
		answer                               string
	}{
		{"no token", "/admin/api/2025-07/graphql.json", "", "application/json", `{"query":"{ shop { id } }"}`,
			401, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`},
		{"wrong token", "/admin/api/2025-07/graphql.json", "shpat_nope", "application/json", `{"query":"{ shop { id } }"}`,
			401, `Invalid API key or access token`},
		{"other version", "/admin/api/2024-10/graphql.json", "shpat_ok", "application/json", `{"query":"{ shop { id } }"}`,
			404, `{"errors":"Not Found"}`},
		{"no query", "/admin/api/2025-07/graphql.json", "shpat_ok", "application/json", `{"variables":{}}`,
			400, `"query":"Required parameter missing or invalid"`},
		{"not JSON", "/admin/api/2025-07/graphql.json", "shpat_ok", "text/plain", `{"query":"{ shop { id } }"}`,
			400, `Required parameter missing or invalid`},
		{"outside the subset", "/admin/api/2025-07/graphql.json", "shpat_ok", "application/json", `{"query":"{ shop { id } }"}`,
			200, `"code":"undefinedField"`},
		{"unknown order", "/admin/api/2025-07/graphql.json", "shpat_ok", "application/json",
			`{"query":"query($id: ID!) { order(id: $id) { id } }","variables":{"id":"gid://shopify/Order/2"}}`,
			200, `"data":{"order":null}`},
		{"known order", "/admin/api/2025-07/graphql.json", "shpat_ok", "application/json",
			`{"query":"query($id: ID!) { order(id: $id) { id } }","variables":{"id":"gid://shopify/Order/1"}}`,
			200, `"status":"OPEN"`},
	} {
		r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.contentType)
		if tc.token != "" {
			r.Header.Set("X-Shopify-Access-Token", tc.token)
		}
		w := httptest.NewRecorder()
		sb.Handler().ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.answer) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, w.Code, w.Body.String(), tc.status, tc.answer)
		}
		if w.Code == http.StatusOK && !strings.Contains(w.Body.String(), `"throttleStatus"`) {
			t.Errorf("%s: no cost figures: %s", tc.name, w.Body.String())
		}
	}
}
