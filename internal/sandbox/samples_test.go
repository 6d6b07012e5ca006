package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/config"
)

func sampleConfig() *config.Config {
	return &config.Config{
		Fulfill: config.Fulfillment{CallbackSecret: "fulfillment-callback-secret"},
		Shopify: config.Shopify{Shop: "acme.myshopify.com", APIVersion: "2025-07", WebhookSecret: "shopify-webhook-secret"},
	}
}

func TestSampleOrderPaidIsSignedLikeShopify(t *testing.T) {
	body, h := SampleOrderPaid(sampleConfig(), 5123456789, "evt-42")
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

func TestSampleTrackingCallbackIsSignedLikeThePlatform(t *testing.T) {
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	body, h := SampleTrackingCallback(sampleConfig(), 5123456789, "1Z999AA10123456784", at)
	if h.Get("X-Timestamp") != strconv.FormatInt(at.Unix(), 10) {
		t.Fatalf("X-Timestamp %q", h.Get("X-Timestamp"))
	}
	mac := hmac.New(sha256.New, []byte("fulfillment-callback-secret"))
	mac.Write([]byte(h.Get("X-Timestamp") + "."))
	mac.Write(body)
	if h.Get("X-Signature") != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatal("X-Signature is not hex(HMAC-SHA256(callback_secret, timestamp.body))")
	}
	var cb map[string]string
	if err := json.Unmarshal(body, &cb); err != nil {
		t.Fatal(err)
	}
	if cb["order_no"] != "5123456789" || cb["tracking_number"] != "1Z999AA10123456784" || cb["carrier"] == "" ||
		cb["tracking_url"] == "" || cb["shipped_at"] != "2025-07-01T12:00:00Z" {
		t.Fatalf("callback %v", cb)
	}
}
