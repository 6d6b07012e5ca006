package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestShopifyOrdersPaidWebhook(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	secret := s.services.Shopify.WebhookSecret
	body := orderPaidBody(820982911946154508)
	good := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(secret, body)}, "X-Shopify-Event-Id": {"evt-1"}, "X-Shopify-Topic": {"orders/paid"}}

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"missing signature", http.Header{"X-Shopify-Event-Id": {"evt-1"}}},
		{"wrong secret", http.Header{"X-Shopify-Hmac-Sha256": {shopifySign("not-the-secret", body)}, "X-Shopify-Event-Id": {"evt-1"}}},
		{"not base64", http.Header{"X-Shopify-Hmac-Sha256": {"%%%"}, "X-Shopify-Event-Id": {"evt-1"}}},
	} {
		if status, out := s.post("/webhooks/shopify/orders-paid", body, tc.header); status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %v, want 401", tc.name, status, out)
		}
	}
	// A body changed after signing is refused too.
	tampered := bytes.Replace(body, []byte(`"42.00"`), []byte(`"0.01"`), 1)
	if status, _ := s.post("/webhooks/shopify/orders-paid", tampered, good); status != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d, want 401", status)
	}
	if _, err := s.db().GetOrder(context.Background(), 820982911946154508); err == nil {
		t.Fatal("a refused webhook stored the order")
	}
	if n := len(s.queued("fulfillment")); n != 0 {
		t.Fatalf("a refused webhook queued %d jobs", n)
	}

	status, out := s.post("/webhooks/shopify/orders-paid", body, good)
	if status != http.StatusOK || out["status"] != "queued" {
		t.Fatalf("good webhook: %d %v", status, out)
	}
	o, err := s.db().GetOrder(context.Background(), 820982911946154508)
	if err != nil || o.Email != "ada@shop.test" || o.Payload != string(body) {
		t.Fatalf("order not saved as received: %v %+v", err, o)
	}
	jobs := s.queued("fulfillment")
	if len(jobs) != 1 || jobs[0].Type != "order:push_fulfillment" || string(jobs[0].Payload) != `{"order_id":820982911946154508}` {
		t.Fatalf("queued: %+v", jobs)
	}
	// The same delivery again, and the same order under another event id:
	// 200, nothing new.
	for _, eventID := range []string{"evt-1", "evt-2"} {
		h := good.Clone()
		h.Set("X-Shopify-Event-Id", eventID)
		if status, out := s.post("/webhooks/shopify/orders-paid", body, h); status != http.StatusOK || out["status"] != "duplicate" {
			t.Fatalf("repeat %s: %d %v", eventID, status, out)
		}
	}
	if n := len(s.queued("fulfillment")); n != 1 {
		t.Fatalf("repeats queued more jobs: %d", n)
	}
	// Malformed JSON, correctly signed: 400; an order without an id: 422.
	for body, want := range map[string]int{`{"id":`: 400, `{"name":"#1"}`: 422} {
		h := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(secret, []byte(body))}, "X-Shopify-Topic": {"orders/paid"}}
		if status, _ := s.post("/webhooks/shopify/orders-paid", []byte(body), h); status != want {
			t.Fatalf("%s: %d, want %d", body, status, want)
		}
	}
}

func TestFulfillmentTrackingCallback(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noWorker: true})
	secret := s.services.Fulfill.CallbackSecret
	body := []byte(`{"order_no":"820982911946154508","tracking_number":"1Z999AA10123456784","carrier":"UPS","tracking_url":"https://ups.test/1Z999AA10123456784","shipped_at":"2026-11-23T10:00:00Z"}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"missing signature", http.Header{"X-Timestamp": {now}}},
		{"missing timestamp", http.Header{"X-Signature": {callbackSign(secret, now, body)}}},
		{"wrong secret", http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign("nope", now, body)}}},
		{"stale timestamp", http.Header{"X-Timestamp": {stale}, "X-Signature": {callbackSign(secret, stale, body)}}},
		{"signature of another timestamp", http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(secret, stale, body)}}},
	} {
		if status, out := s.post("/webhooks/fulfillment/tracking", body, tc.header); status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %v, want 401", tc.name, status, out)
		}
	}
	if n := len(s.queued("shopify")); n != 0 {
		t.Fatalf("refused callbacks queued %d jobs", n)
	}
	good := http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(secret, now, body)}}
	status, out := s.post("/webhooks/fulfillment/tracking", body, good)
	if status != http.StatusOK || out["status"] != "queued" {
		t.Fatalf("good callback: %d %v", status, out)
	}
	sh, err := s.db().GetShipment(context.Background(), int64(out["shipment_id"].(float64)))
	if err != nil || sh.SyncState != "pending" || sh.OrderID != 820982911946154508 || sh.TrackingNumber != "1Z999AA10123456784" {
		t.Fatalf("shipment: %v %+v", err, sh)
	}
	jobs := s.queued("shopify")
	if len(jobs) != 1 || jobs[0].Type != "order:sync_tracking" || jobs[0].ID != sh.JobID {
		t.Fatalf("queued: %+v", jobs)
	}
	if status, out := s.post("/webhooks/fulfillment/tracking", body, good); status != http.StatusOK || out["status"] != "duplicate" {
		t.Fatalf("repeat: %d %v", status, out)
	}
	if n := len(s.queued("shopify")); n != 1 {
		t.Fatalf("the repeat queued more jobs: %d", n)
	}
	bad := []byte(`{"order_no":"abc","tracking_number":""}`)
	h := http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(secret, now, bad)}}
	if status, out := s.post("/webhooks/fulfillment/tracking", bad, h); status != http.StatusUnprocessableEntity || out["fields"] == nil {
		t.Fatalf("invalid callback: %d %v", status, out)
	}
}

// PATCH /api/users/{id} queues user:sync_crm carrying only what changed.
func TestProfileChangeQueuesOnlyChangedFields(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	_, created := s.post("/api/users", registration("ada@shop.test"), nil)
	id := int(created["id"].(float64))
	before := len(s.queued("crm"))
	patch := func(body string) (int, map[string]any) {
		status, out, _ := s.api("PATCH", fmt.Sprintf("/api/users/%d", id), firstToken, body)
		return status, out
	}
	status, out := patch(`{"last_name":"King","first_name":"Ada"}`)
	if status != http.StatusOK || out["last_name"] != "King" {
		t.Fatalf("PATCH: %d %v", status, out)
	}
	jobs := s.queued("crm")
	if len(jobs) != before+1 {
		t.Fatalf("crm jobs: %d, want %d", len(jobs), before+1)
	}
	var p struct {
		Email   string            `json:"email"`
		Changed map[string]string `json:"changed"`
	}
	last := jobs[len(jobs)-1]
	for _, j := range jobs {
		if j.ID > last.ID {
			last = j
		}
	}
	if err := json.Unmarshal(last.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Email != "ada@shop.test" || len(p.Changed) != 1 || p.Changed["last_name"] != "King" {
		t.Fatalf("sync_crm payload %s: want only last_name", last.Payload)
	}
	// Nothing the CRM holds changed: no job.
	if status, _ := patch(`{"first_name":"Ada"}`); status != http.StatusOK {
		t.Fatalf("no-op PATCH: %d", status)
	}
	if n := len(s.queued("crm")); n != before+1 {
		t.Fatalf("a no-op change queued a job")
	}
	for body, want := range map[string]int{`{"email":"bad"}`: 422, `{}`: 422, `{"password":"x"}`: 422, `{`: 400} {
		if status, _ := patch(body); status != want {
			t.Fatalf("PATCH %s: %d, want %d", body, status, want)
		}
	}
	if status, _, _ := s.api("PATCH", "/api/users/999", firstToken, `{"last_name":"X"}`); status != http.StatusNotFound {
		t.Fatalf("unknown user: %d", status)
	}
}
