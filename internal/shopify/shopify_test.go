package shopify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
)

const orderID = 820982911946154500

var ups = shopify.Tracking{Company: "UPS", Number: "1Z999AA10123456784", URL: "https://www.ups.com/track?tracknum=1Z999AA10123456784"}

func shopConfig() shopify.Config {
	return shopify.Config{Shop: "acme.myshopify.com", AccessToken: "shpat_test_token", APIVersion: "2025-07", WebhookSecret: "wh"}
}

type captured struct {
	path   string
	header http.Header
	body   []byte
}

// fakeShop is the fake shop, with the sandbox's fault injection.
type fakeShop struct {
	*shopifytest.Fake
	*sandbox.Sandbox
}

// shop starts a fake of shopConfig's shop and returns it with a client of cfg
// pointed at it and the requests it received.
func shop(t *testing.T, cfg shopify.Config) (fakeShop, *shopify.Client, func() []captured) {
	t.Helper()
	f := shopifytest.New(shopConfig())
	sb := fakeShop{f, sandbox.Of(f)}
	var mu sync.Mutex
	var seen []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, captured{r.URL.Path, r.Header.Clone(), body})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		sb.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	c, err := shopify.New(cfg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sb, c, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), seen...)
	}
}

// The first sync creates a fulfillment of everything with the tracking and
// tells the customer; a second one (a retry) sees the number and adds nothing.
func TestSyncTrackingCreatesOneFulfillment(t *testing.T) {
	sb, c, seen := shop(t, shopConfig())
	sb.AddOrder(orderID, 2)
	outcome, f, err := c.SyncTracking(context.Background(), orderID, ups)
	if err != nil || outcome != shopify.Created || !f.HasTracking(ups.Number) {
		t.Fatalf("sync: %v %+v %v", outcome, f, err)
	}
	fs := sb.Fulfillments(orderID)
	if len(fs) != 1 || len(fs[0].TrackingInfo) != 1 || !fs[0].NotifyCustomer {
		t.Fatalf("fulfillments: %+v", fs)
	}
	if got := fs[0].TrackingInfo[0]; got.Number != ups.Number || got.Company != ups.Company || got.URL != ups.URL {
		t.Errorf("tracking %+v", got)
	}

	outcome, _, err = c.SyncTracking(context.Background(), orderID, ups)
	if err != nil || outcome != shopify.AlreadySynced {
		t.Fatalf("second sync: %v %v", outcome, err)
	}
	if n := len(sb.Fulfillments(orderID)); n != 1 {
		t.Fatalf("%d fulfillments after a repeat, want 1", n)
	}

	// What went over the wire: the versioned path, the token header, the
	// order's gid, and a fulfillmentCreate naming the fulfillment order.
	reqs := seen()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want order + fulfillmentCreate + order", len(reqs))
	}
	for _, r := range reqs {
		if r.path != "/admin/api/2025-07/graphql.json" || r.header.Get("X-Shopify-Access-Token") != "shpat_test_token" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("request %s %v", r.path, r.header)
		}
	}
	var q struct {
		Query     string
		Variables map[string]any
	}
	_ = json.Unmarshal(reqs[0].body, &q)
	if !strings.Contains(q.Query, "fulfillmentOrders(first: 10)") || q.Variables["id"] != "gid://shopify/Order/820982911946154500" {
		t.Errorf("order query %s %v", q.Query, q.Variables)
	}
	_ = json.Unmarshal(reqs[1].body, &q)
	in, _ := q.Variables["fulfillment"].(map[string]any)
	groups, _ := in["lineItemsByFulfillmentOrder"].([]any)
	if !strings.Contains(q.Query, "fulfillmentCreate(fulfillment: $fulfillment)") || len(groups) != 1 || in["notifyCustomer"] != true {
		t.Fatalf("fulfillmentCreate %s %v", q.Query, q.Variables)
	}
	if g := groups[0].(map[string]any); !strings.HasPrefix(g["fulfillmentOrderId"].(string), "gid://shopify/FulfillmentOrder/") {
		t.Errorf("group %v", g)
	}
	if ti := in["trackingInfo"].(map[string]any); ti["number"] != ups.Number || ti["company"] != "UPS" || ti["url"] != ups.URL {
		t.Errorf("trackingInfo %v", ti)
	}
}

// An order fulfilled already (by hand, or with a number since corrected) gets
// its tracking replaced, not a second fulfillment.
func TestSyncTrackingUpdatesTheExistingFulfillment(t *testing.T) {
	sb, c, _ := shop(t, shopConfig())
	sb.AddOrder(orderID, 1)
	if _, _, err := c.SyncTracking(context.Background(), orderID, shopify.Tracking{Company: "DHL", Number: "OLD123"}); err != nil {
		t.Fatal(err)
	}
	outcome, f, err := c.SyncTracking(context.Background(), orderID, ups)
	if err != nil || outcome != shopify.Updated || !f.HasTracking(ups.Number) {
		t.Fatalf("sync: %v %+v %v", outcome, f, err)
	}
	fs := sb.Fulfillments(orderID)
	if len(fs) != 1 || fs[0].TrackingUpdates != 1 || fs[0].TrackingInfo[0].Number != ups.Number {
		t.Fatalf("fulfillments: %+v", fs)
	}
}

// A fulfillmentCreate whose answer was lost did happen: the retry finds the
// number on the order and creates nothing.
func TestLostAnswerRetryCreatesNothing(t *testing.T) {
	sb, c, _ := shop(t, shopConfig())
	sb.AddOrder(orderID, 1)
	o, err := c.Order(context.Background(), orderID)
	if err != nil || len(o.FulfillmentOrders) != 1 || o.FulfillmentOrders[0].Remaining != 1 || o.FulfillmentOrders[0].Status != "OPEN" {
		t.Fatalf("order: %+v %v", o, err)
	}
	sb.AddFault(sandbox.Fault{Service: shopifytest.Service, DropResponse: true, Count: 1})
	_, err = c.CreateFulfillment(context.Background(), []string{o.FulfillmentOrders[0].ID}, ups)
	if class, _ := errand.ClassOf(err); err == nil || class != errand.Transient {
		t.Fatalf("lost answer: %v, want transient", err)
	}
	outcome, _, err := c.SyncTracking(context.Background(), orderID, ups)
	if err != nil || outcome != shopify.AlreadySynced {
		t.Fatalf("retry: %v %v", outcome, err)
	}
	if n := len(sb.Fulfillments(orderID)); n != 1 {
		t.Fatalf("%d fulfillments, want 1", n)
	}
}

func TestUnknownOrder(t *testing.T) {
	sb, c, _ := shop(t, shopConfig())
	_, _, err := c.SyncTracking(context.Background(), orderID, ups)
	if class, _ := errand.ClassOf(err); err == nil || class != errand.Permanent || !strings.Contains(err.Error(), "no such order") {
		t.Fatalf("unknown order: %v (%v), want permanent", err, class)
	}
	// The local sandbox invents orders it is asked about.
	sb.AutoCreateOrders(true)
	if outcome, _, err := c.SyncTracking(context.Background(), orderID, ups); err != nil || outcome != shopify.Created {
		t.Fatalf("auto-created order: %v %v", outcome, err)
	}
}

// userErrors are permanent and carry Shopify's words.
func TestUserErrorsArePermanent(t *testing.T) {
	sb, c, _ := shop(t, shopConfig())
	sb.AddOrder(orderID, 1)
	sb.HoldOrder(orderID)
	_, _, err := c.SyncTracking(context.Background(), orderID, ups)
	class, _ := errand.ClassOf(err)
	if err == nil || class != errand.Permanent || !strings.Contains(err.Error(), "shopify: fulfillmentCreate: userErrors: ") || !strings.Contains(err.Error(), "on_hold") {
		t.Fatalf("on hold: %v (%v)", err, class)
	}
	_, err = c.UpdateTracking(context.Background(), "gid://shopify/Fulfillment/999", ups)
	if class, _ := errand.ClassOf(err); err == nil || class != errand.Permanent || !strings.Contains(err.Error(), "Fulfillment does not exist") {
		t.Fatalf("unknown fulfillment: %v (%v)", err, class)
	}
	if n := len(sb.Fulfillments(orderID)); n != 0 {
		t.Fatalf("%d fulfillments", n)
	}
}

// THROTTLED comes with HTTP 200; the wait is what the bucket needs to hold
// the query's cost again: (112 − 12) / 100 = 1 s with the sandbox's figures.
func TestThrottledWaitsAsShopifyAsks(t *testing.T) {
	sb, c, _ := shop(t, shopConfig())
	sb.AddOrder(orderID, 1)
	sb.AddFault(sandbox.Fault{Service: shopifytest.Service, Throttle: true, Count: 1})
	_, _, err := c.SyncTracking(context.Background(), orderID, ups)
	class, wait := errand.ClassOf(err)
	if class != errand.Throttled || wait != time.Second || !strings.Contains(err.Error(), "THROTTLED") {
		t.Fatalf("%v: class %v wait %s, want throttled 1s", err, class, wait)
	}
	if _, _, err := c.SyncTracking(context.Background(), orderID, ups); err != nil {
		t.Fatalf("after the throttle: %v", err)
	}
}

func TestThrottleWaitFromCost(t *testing.T) {
	for _, tc := range []struct {
		extensions string
		wait       time.Duration
	}{
		{`{"cost":{"requestedQueryCost":752,"actualQueryCost":null,"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":666,"restoreRate":50.0}}}`, 1720 * time.Millisecond},
		{`{"cost":{"requestedQueryCost":502,"throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":2,"restoreRate":100.0}}}`, 5 * time.Second},
		{`{"cost":{"requestedQueryCost":10,"throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":9,"restoreRate":100.0}}}`, time.Second}, // at least 1 s
		{`{}`, 2 * time.Second}, // no figures: the fallback
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],"extensions":` + tc.extensions + `}`))
		}))
		cfg := shopConfig()
		cfg.BaseURL = srv.URL
		c, _ := shopify.New(cfg, time.Second)
		_, err := c.Order(context.Background(), orderID)
		srv.Close()
		if class, wait := errand.ClassOf(err); class != errand.Throttled || wait != tc.wait {
			t.Errorf("%s: %v class %v wait %s, want throttled %s", tc.extensions, err, class, wait, tc.wait)
		}
	}
}

func TestHTTPStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status, retryAfter int
		class              errand.Class
		wait               time.Duration
	}{
		{500, 0, errand.Transient, 0},
		{502, 0, errand.Transient, 0},
		{504, 0, errand.Transient, 0},
		{429, 4, errand.Throttled, 4 * time.Second},
		{429, 0, errand.Throttled, 2 * time.Second},
		{503, 0, errand.Throttled, 2 * time.Second},
		{503, 3, errand.Throttled, 3 * time.Second},
		{401, 0, errand.Permanent, 0},
		{402, 0, errand.Permanent, 0},
		{403, 0, errand.Permanent, 0},
		{404, 0, errand.Permanent, 0},
		{423, 0, errand.Permanent, 0},
	} {
		sb, c, _ := shop(t, shopConfig())
		sb.AddOrder(orderID, 1)
		sb.AddFault(sandbox.Fault{Service: shopifytest.Service, Status: tc.status, RetryAfter: tc.retryAfter, Count: 1})
		_, _, err := c.SyncTracking(context.Background(), orderID, ups)
		if class, wait := errand.ClassOf(err); err == nil || class != tc.class || wait != tc.wait {
			t.Errorf("HTTP %d (Retry-After %d): %v class %v wait %s, want %v %s", tc.status, tc.retryAfter, err, class, wait, tc.class, tc.wait)
		}
	}
}

// The real fake refuses a wrong token with 401 and a path of another API
// version with 404: permanent, and the token appears in no error.
func TestCredentialsAndVersionRefusalsArePermanent(t *testing.T) {
	badToken := shopConfig()
	badToken.AccessToken = "shpat_revoked_token"
	badVersion := shopConfig()
	badVersion.APIVersion = "2024-13"
	for name, cfg := range map[string]shopify.Config{"bad token": badToken, "bad version": badVersion} {
		sb, c, _ := shop(t, cfg)
		sb.AddOrder(orderID, 1)
		_, _, err := c.SyncTracking(context.Background(), orderID, ups)
		class, _ := errand.ClassOf(err)
		if err == nil || class != errand.Permanent {
			t.Errorf("%s: %v (%v), want permanent", name, err, class)
			continue
		}
		if strings.Contains(err.Error(), "shpat_") {
			t.Errorf("%s: the error shows the access token: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestGraphQLErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		body  string
		class errand.Class
	}{
		{`{"errors":[{"message":"Internal error. Looks like something went wrong on our end.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`, errand.Transient},
		{`{"errors":[{"message":"Access denied for order field.","extensions":{"code":"ACCESS_DENIED"}}]}`, errand.Permanent},
		{`{"errors":[{"message":"Field 'nope' doesn't exist on type 'Order'","locations":[{"line":3,"column":5}]}]}`, errand.Permanent},
		{`{"errors":"[API] This action requires merchant approval for write_orders scope."}`, errand.Permanent},
		{`not json`, errand.Transient},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(tc.body))
		}))
		cfg := shopConfig()
		cfg.BaseURL = srv.URL
		c, _ := shopify.New(cfg, time.Second)
		_, err := c.Order(context.Background(), orderID)
		srv.Close()
		if class, _ := errand.ClassOf(err); err == nil || class != tc.class {
			t.Errorf("%s: %v class %v, want %v", tc.body, err, class, tc.class)
		}
	}
}

func TestNewDefaultsToTheShopsURL(t *testing.T) {
	// No base_url: the shop's own host. The request fails (nothing listens on
	// that name here) but names where it went.
	cfg := shopConfig()
	cfg.Shop = "acme.invalid"
	c, err := shopify.New(cfg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Order(context.Background(), orderID)
	if class, _ := errand.ClassOf(err); err == nil || class != errand.Transient || !strings.Contains(err.Error(), "https://acme.invalid/admin/api/2025-07/graphql.json") {
		t.Fatalf("%v (%v)", err, class)
	}
	if _, err := shopify.New(shopify.Config{APIVersion: "2025-07", AccessToken: "shpat_x"}, 0); err == nil || strings.Contains(err.Error(), "shpat_x") {
		t.Fatalf("no shop: %v", err)
	}
}
