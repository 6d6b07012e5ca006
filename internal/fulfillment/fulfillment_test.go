package fulfillment_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
)

const orderID = 5123456789

func testConfig() fulfillment.Config {
	return fulfillment.Config{AppKey: "mabang-app-key", AppSecret: "mabang-app-secret", CallbackSecret: "cb"}
}

// fakeGateway is the fake gateway, with the sandbox's fault injection.
type fakeGateway struct {
	*fulfillmenttest.Fake
	*sandbox.Sandbox
}

// captured is a request as the gateway received it.
type captured struct {
	header http.Header
	body   []byte
}

// gateway starts a fake gateway of testConfig's app and returns it with a
// client of cfg pointed at it and the requests it received.
func gateway(t *testing.T, cfg fulfillment.Config) (fakeGateway, *fulfillment.Client, func() []captured) {
	t.Helper()
	f := fulfillmenttest.New(testConfig())
	sb := fakeGateway{f, sandbox.Of(f)}
	var mu sync.Mutex
	var seen []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, captured{r.Header.Clone(), body})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		sb.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	c, err := fulfillment.New(cfg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sb, c, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), seen...)
	}
}

func sampleOrder(t *testing.T) *fulfillment.Order {
	t.Helper()
	body, _ := shopifytest.OrderPaid(shopify.Config{Shop: "acme.myshopify.com", WebhookSecret: "wh", APIVersion: "2025-07"}, orderID, "evt-1")
	o, err := fulfillment.OrderFromShopify(orderID, body)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestCreateOrderPushesTheShopifyOrder(t *testing.T) {
	sb, c, seen := gateway(t, testConfig())
	res, err := c.CreateOrder(context.Background(), sampleOrder(t))
	if err != nil || res.AlreadyCreated {
		t.Fatalf("create: %+v %v", res, err)
	}
	var data struct{ OrderID string }
	if err := json.Unmarshal(res.Data, &data); err != nil || data.OrderID == "" {
		t.Errorf("answer data %s", res.Data)
	}
	got := sb.Orders()
	if len(got) != 1 {
		t.Fatalf("the gateway holds %d orders", len(got))
	}
	o := got[0]
	if o["platformOrderId"] != "5123456789" || o["buyerEmail"] != "ada@example.com" || o["buyerName"] != "Ada Lovelace" ||
		o["currency"] != "USD" || o["orderAmount"] != "64.00" {
		t.Errorf("order fields: %v", o)
	}
	items, _ := o["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("items: %v", o["items"])
	}
	if it := items[0].(map[string]any); it["sku"] != "MUG-BLK-12" || it["quantity"] != 2.0 || it["price"] != "19.50" || it["title"] != "Enamel mug" {
		t.Errorf("item: %v", it)
	}
	if sh := o["shipping"].(map[string]any); sh["countryCode"] != "GB" || sh["city"] != "London" || sh["address1"] != "12 St James's Square" || sh["zip"] != "SW1Y 4JH" {
		t.Errorf("shipping: %v", sh)
	}

	// The envelope, as sent.
	req := seen()[0]
	var env map[string]json.RawMessage
	if err := json.Unmarshal(req.body, &env); err != nil {
		t.Fatal(err)
	}
	if string(env["api"]) != `"order-do-create-order"` || string(env["appkey"]) != `"mabang-app-key"` || string(env["version"]) != `"2"` {
		t.Errorf("envelope: %s", req.body)
	}
	if ts := string(env["timestamp"]); !regexp.MustCompile(`^[0-9]{10}$`).MatchString(ts) {
		t.Errorf("timestamp %s is not 10-digit unix seconds", ts)
	}
	if ct := req.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

// The signature is HMAC-SHA256 over exactly the bytes sent: recomputing it
// over the received body matches, and the same signature on a body that
// differs by one byte — even only in whitespace — is refused.
func TestSignatureCoversTheExactBytesSent(t *testing.T) {
	sb, c, seen := gateway(t, testConfig())
	if _, err := c.CreateOrder(context.Background(), sampleOrder(t)); err != nil {
		t.Fatal(err)
	}
	req := seen()[0]
	mac := hmac.New(sha256.New, []byte("mabang-app-secret"))
	mac.Write(req.body)
	if want := hex.EncodeToString(mac.Sum(nil)); req.header.Get("Authorization") != want {
		t.Fatalf("Authorization %q, want hex(HMAC-SHA256(secret, body)) %q", req.header.Get("Authorization"), want)
	}
	for name, tampered := range map[string][]byte{
		"a space added":     append(append([]byte{}, req.body...), ' '),
		"a field re-spaced": bytes.Replace(req.body, []byte(`"version":"2"`), []byte(`"version": "2"`), 1),
		"the amount raised": bytes.Replace(req.body, []byte(`"64.00"`), []byte(`"94.00"`), 1),
	} {
		r := httptest.NewRequest("POST", "/api/v2", bytes.NewReader(tampered))
		r.Header = req.header.Clone()
		w := httptest.NewRecorder()
		sb.Handler().ServeHTTP(w, r)
		if !strings.Contains(w.Body.String(), `"code":"1002"`) {
			t.Errorf("%s: the gateway answered %s, want the signature refused", name, w.Body.String())
		}
	}
	if n := len(sb.Orders()); n != 1 {
		t.Errorf("tampered requests created orders: %d", n)
	}
}

// A push whose answer was lost is retried; the gateway recognises the order
// and the retry succeeds without a second order.
func TestLostAnswerRetryIsNotASecondOrder(t *testing.T) {
	sb, c, _ := gateway(t, testConfig())
	sb.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, DropResponse: true, Count: 1})
	_, err := c.CreateOrder(context.Background(), sampleOrder(t))
	if class, _ := errand.ClassOf(err); err == nil || class != errand.Transient {
		t.Fatalf("lost answer: %v (class %v), want transient", err, class)
	}
	res, err := c.CreateOrder(context.Background(), sampleOrder(t))
	if err != nil || !res.AlreadyCreated {
		t.Fatalf("retry: %+v %v, want success with AlreadyCreated", res, err)
	}
	if n := len(sb.Orders()); n != 1 {
		t.Fatalf("the gateway holds %d orders, want 1", n)
	}
}

func TestCreateOrderFailureClasses(t *testing.T) {
	wrongSecret := testConfig()
	wrongSecret.AppSecret = "not-the-secret"
	wrongKey := testConfig()
	wrongKey.AppKey = "someone-else"
	noShipping := func(t *testing.T) *fulfillment.Order { o := sampleOrder(t); o.Shipping = nil; return o }

	for _, tc := range []struct {
		name  string
		cfg   *fulfillment.Config
		fault *sandbox.Fault
		order func(*testing.T) *fulfillment.Order
		clock time.Duration
		class errand.Class
		wait  time.Duration
		msg   string
	}{
		{name: "bad signature", cfg: &wrongSecret, class: errand.Permanent, msg: "code 1002"},
		{name: "unknown appkey", cfg: &wrongKey, class: errand.Permanent, msg: "code 1001"},
		{name: "clock ten minutes off", clock: 10 * time.Minute, class: errand.Permanent, msg: "code 1003"},
		{name: "no shipping address", order: noShipping, class: errand.Permanent, msg: "code 2001"},
		{name: "HTTP 500", fault: &sandbox.Fault{Status: 500}, class: errand.Transient, msg: "HTTP 500"},
		{name: "HTTP 502", fault: &sandbox.Fault{Status: 502}, class: errand.Transient, msg: "HTTP 502"},
		{name: "HTTP 401", fault: &sandbox.Fault{Status: 401}, class: errand.Permanent, msg: "HTTP 401"},
		{name: "throttled", fault: &sandbox.Fault{Throttle: true}, class: errand.Throttled, wait: time.Second, msg: "HTTP 429"},
		{name: "429 with Retry-After", fault: &sandbox.Fault{Status: 429, RetryAfter: 3}, class: errand.Throttled, wait: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			sb, c, _ := gateway(t, cfg)
			if tc.fault != nil {
				f := *tc.fault
				f.Service = fulfillmenttest.Service
				sb.AddFault(f)
			}
			if tc.clock != 0 {
				c.SetClock(func() time.Time { return time.Now().Add(tc.clock) })
			}
			o := sampleOrder(t)
			if tc.order != nil {
				o = tc.order(t)
			}
			_, err := c.CreateOrder(context.Background(), o)
			if err == nil {
				t.Fatal("no error")
			}
			class, wait := errand.ClassOf(err)
			if class != tc.class || wait != tc.wait || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%v: class %v wait %s, want %v %s and %q", err, class, wait, tc.class, tc.wait, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "fulfillment: create order 5123456789: ") {
				t.Errorf("error lacks its context: %v", err)
			}
			if strings.Contains(err.Error(), "mabang-app-secret") || strings.Contains(err.Error(), "not-the-secret") {
				t.Errorf("error shows the app secret: %v", err)
			}
			if n := len(sb.Orders()); n != 0 {
				t.Errorf("a refused push created %d orders", n)
			}
		})
	}
}

// The gateway's codes come as strings or numbers; both are read, and each
// class of code gets its class.
func TestAnswerCodes(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		ok      bool
		already bool
		class   errand.Class
		wait    time.Duration
	}{
		{answer: `{"code":"200","message":"success","data":{"orderId":"MB1"}}`, ok: true},
		{answer: `{"code":0,"message":"ok","data":null}`, ok: true},
		{answer: `{"code":200,"message":"success"}`, ok: true},
		{answer: `{"code":"0","message":"ok"}`, ok: true},
		{answer: `{"code":"2002","message":"order already exists"}`, ok: true, already: true},
		{answer: `{"code":2002,"message":"order already exists"}`, ok: true, already: true},
		{answer: `{"code":"1002","message":"signature verification failed"}`, class: errand.Permanent},
		{answer: `{"code":1001,"message":"appkey is invalid"}`, class: errand.Permanent},
		{answer: `{"code":"401","message":"unauthorized"}`, class: errand.Permanent},
		{answer: `{"code":"2001","message":"parameter validation failed"}`, class: errand.Permanent},
		{answer: `{"code":"429","message":"too many requests"}`, class: errand.Throttled, wait: 2 * time.Second},
		{answer: `{"code":"5000","message":"system busy"}`, class: errand.Transient},
		{answer: `{"code":500,"message":{"detail":"oops"}}`, class: errand.Transient},
		{answer: `<html>gateway maintenance</html>`, class: errand.Transient},
		{answer: `{"message":"no code"}`, class: errand.Transient},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(tc.answer))
		}))
		cfg := testConfig()
		cfg.BaseURL = srv.URL
		c, _ := fulfillment.New(cfg, time.Second)
		res, err := c.CreateOrder(context.Background(), &fulfillment.Order{PlatformOrderID: "1"})
		srv.Close()
		if tc.ok {
			if err != nil || res.AlreadyCreated != tc.already {
				t.Errorf("%s: %+v %v", tc.answer, res, err)
			}
			continue
		}
		class, wait := errand.ClassOf(err)
		if err == nil || class != tc.class || wait != tc.wait {
			t.Errorf("%s: %v class %v wait %s, want %v %s", tc.answer, err, class, wait, tc.class, tc.wait)
		}
	}
}

func TestOrderFromShopify(t *testing.T) {
	o := sampleOrder(t)
	if o.PlatformOrderID != "5123456789" || o.OrderName == "" || len(o.Items) != 2 || o.Shipping == nil || o.Shipping.Phone == "" {
		t.Fatalf("%+v", o)
	}
	// Prices sent as numbers are kept as written; a name is built from the
	// parts when the address has none.
	o, err := fulfillment.OrderFromShopify(42, []byte(`{"id":42,"total_price":64.5,"line_items":[{"sku":"A","quantity":1,"price":19}],
		"shipping_address":{"first_name":"Ada","last_name":"Lovelace","address1":"x","city":"y","country_code":"GB"}}`))
	if err != nil || o.OrderAmount != "64.5" || o.Items[0].Price != "19" || o.Shipping.Name != "Ada Lovelace" || o.BuyerName != "Ada Lovelace" {
		t.Fatalf("%+v %v", o, err)
	}
	// Lines that need no shipping stay out; an order of only those is
	// nothing to ship.
	o, err = fulfillment.OrderFromShopify(42, []byte(`{"id":42,"line_items":[{"sku":"GIFT","quantity":1,"requires_shipping":false},{"sku":"MUG","quantity":1,"requires_shipping":true}]}`))
	if err != nil || len(o.Items) != 1 || o.Items[0].SKU != "MUG" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := fulfillment.OrderFromShopify(42, []byte(`{"id":42,"line_items":[{"sku":"GIFT","quantity":1,"requires_shipping":false}]}`)); !errors.Is(err, fulfillment.ErrNothingToShip) {
		t.Fatalf("a gift-card order: %v", err)
	}
	if _, err := fulfillment.OrderFromShopify(43, []byte(`{"id":42}`)); err == nil {
		t.Error("another order's webhook was accepted")
	}
	if _, err := fulfillment.OrderFromShopify(43, []byte(`not json`)); err == nil {
		t.Error("a payload that is not JSON was accepted")
	}
}

func TestNewNeedsItsSettings(t *testing.T) {
	_, err := fulfillment.New(fulfillment.Config{AppSecret: "s3cret"}, 0)
	if err == nil || !strings.Contains(err.Error(), "fulfillment.base_url") || !strings.Contains(err.Error(), "fulfillment.app_key") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("%v", err)
	}
}
