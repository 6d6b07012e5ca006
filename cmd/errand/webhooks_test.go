package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/store"
	"github.com/hibiken/asynq"
)

func (s *stack) postRaw(path string, body []byte, header http.Header) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.base+path, bytes.NewReader(body))
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// queued returns the jobs waiting in Redis (pending or scheduled), of one
// queue, once the relay has moved them.
func (s *stack) queued(queue string) []*asynq.TaskInfo {
	s.t.Helper()
	time.Sleep(300 * time.Millisecond) // the relay runs on commit
	ins := asynq.NewInspectorFromRedisClient(s.redis.Client())
	pending, _ := ins.ListPendingTasks(queue)
	scheduled, _ := ins.ListScheduledTasks(queue)
	return append(pending, scheduled...)
}

func (s *stack) db() *store.Store {
	s.t.Helper()
	st, err := store.Open("file:" + filepath.Join(s.dir, "errand.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { st.Close() })
	return st
}

// shopifySign and callbackSign sign as Shopify and the fulfillment platform
// document it, written apart from internal/shopify and internal/fulfillment
// so that a mistake shared by errand's signing and checking cannot hide.
func shopifySign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func orderPaidBody(id int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%d,"name":"#1001","email":"ada@shop.test","currency":"EUR","total_price":"42.00",
"line_items":[{"sku":"MUG-1","title":"Mug","quantity":2,"price":"21.00"}],
"shipping_address":{"name":"Ada Lovelace","address1":"1 Analytical Way","city":"London","zip":"N1","country_code":"GB"}}`, id))
}

func TestShopifyOrdersPaidWebhook(t *testing.T) {
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
		if status, out := s.postRaw("/webhooks/shopify/orders-paid", body, tc.header); status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %v, want 401", tc.name, status, out)
		}
	}
	// A body changed after signing is refused too.
	tampered := bytes.Replace(body, []byte(`"42.00"`), []byte(`"0.01"`), 1)
	if status, _ := s.postRaw("/webhooks/shopify/orders-paid", tampered, good); status != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d, want 401", status)
	}
	if _, err := s.db().GetOrder(context.Background(), 820982911946154508); err == nil {
		t.Fatal("a refused webhook stored the order")
	}
	if n := len(s.queued("fulfillment")); n != 0 {
		t.Fatalf("a refused webhook queued %d jobs", n)
	}

	status, out := s.postRaw("/webhooks/shopify/orders-paid", body, good)
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
		if status, out := s.postRaw("/webhooks/shopify/orders-paid", body, h); status != http.StatusOK || out["status"] != "duplicate" {
			t.Fatalf("repeat %s: %d %v", eventID, status, out)
		}
	}
	if n := len(s.queued("fulfillment")); n != 1 {
		t.Fatalf("repeats queued more jobs: %d", n)
	}
	// Malformed JSON, correctly signed: 400; an order without an id: 422.
	for body, want := range map[string]int{`{"id":`: 400, `{"name":"#1"}`: 422} {
		h := http.Header{"X-Shopify-Hmac-Sha256": {shopifySign(secret, []byte(body))}, "X-Shopify-Topic": {"orders/paid"}}
		if status, _ := s.postRaw("/webhooks/shopify/orders-paid", []byte(body), h); status != want {
			t.Fatalf("%s: %d, want %d", body, status, want)
		}
	}
}

func callbackSign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestFulfillmentTrackingCallback(t *testing.T) {
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
		if status, out := s.postRaw("/webhooks/fulfillment/tracking", body, tc.header); status != http.StatusUnauthorized {
			t.Fatalf("%s: %d %v, want 401", tc.name, status, out)
		}
	}
	if n := len(s.queued("shopify")); n != 0 {
		t.Fatalf("refused callbacks queued %d jobs", n)
	}
	good := http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(secret, now, body)}}
	status, out := s.postRaw("/webhooks/fulfillment/tracking", body, good)
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
	if status, out := s.postRaw("/webhooks/fulfillment/tracking", body, good); status != http.StatusOK || out["status"] != "duplicate" {
		t.Fatalf("repeat: %d %v", status, out)
	}
	if n := len(s.queued("shopify")); n != 1 {
		t.Fatalf("the repeat queued more jobs: %d", n)
	}
	bad := []byte(`{"order_no":"abc","tracking_number":""}`)
	h := http.Header{"X-Timestamp": {now}, "X-Signature": {callbackSign(secret, now, bad)}}
	if status, out := s.postRaw("/webhooks/fulfillment/tracking", bad, h); status != http.StatusUnprocessableEntity || out["fields"] == nil {
		t.Fatalf("invalid callback: %d %v", status, out)
	}
}

// PATCH /api/users/{id} queues user:sync_crm carrying only what changed.
func TestProfileChangeQueuesOnlyChangedFields(t *testing.T) {
	s := startStack(t, stackOptions{toml: apiTOML, noWorker: true})
	_, created := s.post("/api/users", registration("ada@shop.test"))
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
