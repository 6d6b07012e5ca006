package shopifytest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
)

// The Shopify fake's own checks, before any GraphQL is read.
func TestShopifyFakeRefusesWhatShopifyRefuses(t *testing.T) {
	fake := shopifytest.New(shopify.Config{AccessToken: "shpat_ok", APIVersion: "2025-07"})
	fake.AddOrder(1, 1)
	sb := sandbox.Of(fake)
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

// The sample orders/paid delivery is what Shopify sends: checked here
// against the documented signature, computed independently.
func TestOrderPaidIsSignedLikeShopify(t *testing.T) {
	body, h := shopifytest.OrderPaid(shopify.Config{Shop: "acme.myshopify.com", APIVersion: "2025-07", WebhookSecret: "shopify-webhook-secret"}, 5123456789, "evt-42")
	mac := hmac.New(sha256.New, []byte("shopify-webhook-secret"))
	mac.Write(body)
	if h.Get("X-Shopify-Hmac-Sha256") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Fatal("X-Shopify-Hmac-Sha256 is not base64(HMAC-SHA256(webhook_secret, body))")
	}
	if h.Get("X-Shopify-Topic") != "orders/paid" || h.Get("X-Shopify-Event-Id") != "evt-42" || h.Get("X-Shopify-Shop-Domain") != "acme.myshopify.com" {
		t.Fatalf("headers %v", h)
	}
	var o struct {
		ID          json.Number `json:"id"`
		Name, Email string
		Currency    string
		TotalPrice  string `json:"total_price"`
		LineItems   []struct {
			SKU, Title, Price string
			Quantity          int
		} `json:"line_items"`
		ShippingAddress struct {
			Name, Address1, City, Zip string
			CountryCode               string `json:"country_code"`
		} `json:"shipping_address"`
	}
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatal(err)
	}
	if o.ID.String() != "5123456789" || o.Email == "" || o.Currency != "USD" || o.TotalPrice != "64.00" || len(o.LineItems) != 2 ||
		o.LineItems[0].SKU == "" || o.LineItems[0].Quantity < 1 || o.ShippingAddress.CountryCode != "GB" || o.ShippingAddress.Address1 == "" {
		t.Fatalf("order %+v", o)
	}
}
