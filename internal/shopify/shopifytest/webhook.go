package shopifytest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/errandhq/errand/internal/shopify"
)

// OrderPaid builds an orders/paid webhook delivery for order orderID as
// Shopify sends it to the shop cfg: the order JSON (two line items, a
// shipping address) and the headers, signed with cfg.WebhookSecret. eventID is
// X-Shopify-Event-Id, which tells repeats of one delivery apart from new ones.
func OrderPaid(cfg shopify.Config, orderID int64, eventID string) (body []byte, header http.Header) {
	number := 1000 + orderID%9000
	now := time.Now().UTC()
	order := map[string]any{
		"id":                   orderID,
		"admin_graphql_api_id": shopify.OrderGID(orderID),
		"name":                 fmt.Sprintf("#%d", number),
		"order_number":         number,
		"email":                "ada@example.com",
		"contact_email":        "ada@example.com",
		"created_at":           now.Add(-2 * time.Minute).Format(time.RFC3339),
		"processed_at":         now.Add(-2 * time.Minute).Format(time.RFC3339),
		"currency":             "USD",
		"presentment_currency": "USD",
		"financial_status":     "paid",
		"fulfillment_status":   nil,
		"subtotal_price":       "59.00",
		"total_tax":            "0.00",
		"total_price":          "64.00",
		"total_shipping_price_set": map[string]any{
			"shop_money": map[string]any{"amount": "5.00", "currency_code": "USD"},
		},
		"customer": map[string]any{
			"id": 7000000000 + orderID%1000000, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
		},
		"line_items": []any{
			map[string]any{
				"id": orderID*10 + 1, "variant_id": 44000000001, "product_id": 8000000001,
				"sku": "MUG-BLK-12", "title": "Enamel mug", "variant_title": "Black / 12 oz", "name": "Enamel mug - Black / 12 oz",
				"quantity": 2, "price": "19.50", "requires_shipping": true, "fulfillable_quantity": 2,
			},
			map[string]any{
				"id": orderID*10 + 2, "variant_id": 44000000002, "product_id": 8000000002,
				"sku": "TEE-NAT-M", "title": "Organic tee", "variant_title": "Natural / M", "name": "Organic tee - Natural / M",
				"quantity": 1, "price": "20.00", "requires_shipping": true, "fulfillable_quantity": 1,
			},
		},
		"shipping_address": map[string]any{
			"first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace", "company": nil,
			"address1": "12 St James's Square", "address2": "Flat 3", "city": "London", "zip": "SW1Y 4JH",
			"province": "England", "province_code": "ENG", "country": "United Kingdom", "country_code": "GB",
			"phone": "+44 20 7946 0000",
		},
	}
	body, _ = json.Marshal(order)
	header = http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("X-Shopify-Topic", "orders/paid")
	header.Set("X-Shopify-Hmac-Sha256", shopify.SignWebhook(cfg.WebhookSecret, body))
	header.Set("X-Shopify-Shop-Domain", cfg.Shop)
	header.Set("X-Shopify-API-Version", cfg.APIVersion)
	header.Set("X-Shopify-Event-Id", eventID)
	// Derived from eventID, so the same sample sent twice is a repeated delivery.
	h := sha256.Sum256([]byte(eventID))
	header.Set("X-Shopify-Webhook-Id", fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
	header.Set("X-Shopify-Triggered-At", now.Format(time.RFC3339Nano))
	return body, header
}
