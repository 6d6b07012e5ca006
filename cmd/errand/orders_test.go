package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
	"github.com/errandhq/errand/internal/store"
)

// orderRetries runs the order jobs' attempts a second apart.
const orderRetries = `
[jobs."order:push_fulfillment"]
backoff = ["1s"]
[jobs."order:sync_tracking"]
backoff = ["1s"]
` + escalateRetries

// orderStack is the stack with what the order tests seed in its database:
// the orders and shipments the webhooks would have saved.
type orderStack struct{ *stack }

func startOrderStack(t *testing.T) *orderStack {
	return &orderStack{startStack(t, stackOptions{toml: orderRetries})}
}

// saveOrder saves a paid order as the orders/paid webhook would, without
// queuing its job; edit may change the webhook JSON first.
func (o *orderStack) saveOrder(id int64, edit func(map[string]any)) {
	o.t.Helper()
	body, _ := shopifytest.OrderPaid(o.services.Shopify, id, fmt.Sprintf("evt-%d", id))
	if edit != nil {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		edit(m)
		body, _ = json.Marshal(m)
	}
	if err := o.db().SaveOrder(context.Background(), "", &store.Order{ID: id, Name: "#1001", Email: "ada@example.com", Payload: string(body)}, nil); err != nil {
		o.t.Fatal(err)
	}
}

// saveShipment saves a shipment as the tracking callback would, without
// queuing its job, and returns the order:sync_tracking payload for it.
func (o *orderStack) saveShipment(orderID int64, tracking string) (*store.Shipment, string) {
	o.t.Helper()
	sh := &store.Shipment{OrderID: orderID, TrackingNumber: tracking, Carrier: "UPS",
		TrackingURL: "https://www.ups.com/track?tracknum=" + tracking, ShippedAt: time.Now().UTC().Format(time.RFC3339)}
	if err := o.db().SaveShipment(context.Background(), sh, func(*store.Shipment) ([]job.Envelope, error) { return nil, nil }); err != nil {
		o.t.Fatal(err)
	}
	p, _ := json.Marshal(map[string]any{"shipment_id": sh.ID, "order_id": orderID, "tracking_number": tracking,
		"carrier": sh.Carrier, "tracking_url": sh.TrackingURL})
	return sh, string(p)
}

func (o *orderStack) syncState(id int64) string {
	o.t.Helper()
	sh, err := o.db().GetShipment(context.Background(), id)
	if err != nil {
		o.t.Fatal(err)
	}
	return sh.SyncState
}

const paidOrder = 5123456789

// A paid order reaches the fulfillment platform, signed and complete, with
// its Shopify id as platformOrderId.
func TestPushFulfillmentSendsThePaidOrder(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.saveOrder(paidOrder, nil)
	id := o.enqueue("order:push_fulfillment", fmt.Sprintf(`{"order_id":%d}`, paidOrder))
	if done := o.waitDone(id); !strings.Contains(done, "attempt=1 ") {
		t.Fatalf("done: %s", done)
	}
	got := o.sandbox.Fulfillment.Orders()
	if len(got) != 1 {
		t.Fatalf("the platform holds %d orders, want 1", len(got))
	}
	items, _ := got[0]["items"].([]any)
	if got[0]["platformOrderId"] != "5123456789" || len(items) != 2 || got[0]["buyerEmail"] != "ada@example.com" || got[0]["shipping"] == nil {
		t.Fatalf("order at the platform: %v", got[0])
	}
	if n := len(o.worker.lines("order pushed to the fulfillment platform", "order_id=5123456789")); n != 1 {
		t.Errorf("%d 'order pushed' log lines, want 1", n)
	}
	o.noSecrets()
}

// The platform took the order but its answer was lost: the retry is
// recognised as the same order, and the warehouse gets it once.
func TestPushFulfillmentLostAnswerIsNotPushedTwice(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.saveOrder(paidOrder, nil)
	o.sandbox.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, DropResponse: true, Count: 1})
	id := o.enqueue("order:push_fulfillment", fmt.Sprintf(`{"order_id":%d}`, paidOrder))
	if done := o.waitDone(id); !strings.Contains(done, "attempt=2 ") {
		t.Fatalf("want done on attempt 2: %s", done)
	}
	if n := len(o.sandbox.Fulfillment.Orders()); n != 1 {
		t.Fatalf("the platform holds %d orders, want 1", n)
	}
	if n := len(o.worker.lines("order was already at the fulfillment platform", "order_id=5123456789")); n != 1 {
		t.Fatalf("the retry was not recognised as a repeat")
	}
}

// The gateway rate-limits twice (429, Retry-After 1 s, then 2 s): the push
// waits as told each time and completes on its first attempt.
func TestPushFulfillmentThrottledUsesNoAttempt(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.saveOrder(paidOrder, nil)
	o.sandbox.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, Throttle: true, Count: 1})
	o.sandbox.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, Status: http.StatusTooManyRequests, RetryAfter: 2, Count: 1})
	id := o.enqueue("order:push_fulfillment", fmt.Sprintf(`{"order_id":%d}`, paidOrder))
	o.waitThrottled(id, fulfillmenttest.Service, 0, time.Second, 2*time.Second)
	if n := len(o.sandbox.Fulfillment.Orders()); n != 1 {
		t.Fatalf("the platform holds %d orders, want 1", n)
	}
}

// The gateway answers 500 to every call: exactly 3 attempts, then one
// escalation email.
func TestPushFulfillmentOutageThreeAttemptsThenEscalation(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.saveOrder(paidOrder, nil)
	o.sandbox.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, Status: http.StatusInternalServerError})
	id := o.enqueue("order:push_fulfillment", fmt.Sprintf(`{"order_id":%d}`, paidOrder))
	o.waitEscalated(id, 3, "transient", "HTTP 500")
	if n := len(o.sandbox.Calls(fulfillmenttest.Service)); n != 3 {
		t.Fatalf("the gateway was called %d times, want once per attempt (3)", n)
	}
}

// The gateway refuses the order's data (no shipping address): permanent, one
// attempt, one escalation carrying the gateway's code and words.
func TestPushFulfillmentRefusalEscalatesAfterOneAttempt(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.saveOrder(paidOrder, func(m map[string]any) { delete(m, "shipping_address") })
	id := o.enqueue("order:push_fulfillment", fmt.Sprintf(`{"order_id":%d}`, paidOrder))
	o.waitEscalated(id, 1, "permanent", "code 2001: parameter validation failed: shipping is required")
	if n := len(o.sandbox.Calls(fulfillmenttest.Service)); n != 1 {
		t.Fatalf("the gateway was called %d times, want once", n)
	}
}

// The tracking reaches Shopify as a fulfillment and the shipment is marked
// synced. A shipment whose number Shopify already has (an earlier attempt got
// through, its answer lost) is only marked synced.
func TestSyncTrackingMarksShipmentSynced(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.sandbox.Shopify.AddOrder(paidOrder, 2)
	sh, payload := o.saveShipment(paidOrder, "1Z999AA10123456784")
	id := o.enqueue("order:sync_tracking", payload)
	if done := o.waitDone(id); !strings.Contains(done, "attempt=1 ") {
		t.Fatalf("done: %s", done)
	}
	if state := o.syncState(sh.ID); state != "synced" {
		t.Fatalf("shipment %s, want synced", state)
	}
	fs := o.sandbox.Shopify.Fulfillments(paidOrder)
	if len(fs) != 1 || len(fs[0].TrackingInfo) != 1 || fs[0].TrackingInfo[0].Number != "1Z999AA10123456784" ||
		fs[0].TrackingInfo[0].Company != "UPS" || !fs[0].NotifyCustomer {
		t.Fatalf("fulfillments on Shopify: %+v", fs)
	}
	if n := len(o.worker.lines("tracking synced to Shopify", fmt.Sprintf("shipment_id=%d ", sh.ID), "outcome=created")); n != 1 {
		t.Errorf("%d 'tracking synced' lines with outcome=created, want 1", n)
	}

	// Another order, fulfilled on Shopify with this number already.
	const other = 5123456790
	o.sandbox.Shopify.AddOrder(other, 1)
	c, err := shopify.New(o.services.Shopify, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SyncTracking(context.Background(), other, shopify.Tracking{Company: "UPS", Number: "1Z999AA10123456785"}); err != nil {
		t.Fatal(err)
	}
	sh2, payload2 := o.saveShipment(other, "1Z999AA10123456785")
	id2 := o.enqueue("order:sync_tracking", payload2)
	if done := o.waitDone(id2); !strings.Contains(done, "attempt=1 ") {
		t.Fatalf("done: %s", done)
	}
	if state := o.syncState(sh2.ID); state != "synced" {
		t.Fatalf("second shipment %s, want synced", state)
	}
	if n := len(o.sandbox.Shopify.Fulfillments(other)); n != 1 {
		t.Fatalf("%d fulfillments on the second order, want 1", n)
	}
	if n := len(o.worker.lines("tracking synced to Shopify", fmt.Sprintf("shipment_id=%d ", sh2.ID), `outcome="already synced"`)); n != 1 {
		t.Errorf("the second job did not report the number as already on Shopify")
	}
	o.noSecrets()
}

// Shopify throttles twice — its own way (HTTP 200, THROTTLED, a bucket 100
// points short at 100 points/s: 1 s), then with HTTP 429 and Retry-After 2 —
// and the sync waits as told each time, completing on its first attempt.
func TestSyncTrackingThrottledUsesNoAttempt(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.sandbox.Shopify.AddOrder(paidOrder, 1)
	sh, payload := o.saveShipment(paidOrder, "1Z999AA10123456784")
	o.sandbox.AddFault(sandbox.Fault{Service: shopifytest.Service, Throttle: true, Count: 1})
	o.sandbox.AddFault(sandbox.Fault{Service: shopifytest.Service, Status: http.StatusTooManyRequests, RetryAfter: 2, Count: 1})
	id := o.enqueue("order:sync_tracking", payload)
	o.waitThrottled(id, shopifytest.Service, 0, time.Second, 2*time.Second)
	if first := o.sandbox.Calls(shopifytest.Service)[0]; first.Status != http.StatusOK || first.Note != "injected throttling" {
		t.Errorf("the first answer was not Shopify's HTTP 200 THROTTLED: %+v", first)
	}
	if state := o.syncState(sh.ID); state != "synced" {
		t.Fatalf("shipment %s, want synced", state)
	}
	if n := len(o.sandbox.Shopify.Fulfillments(paidOrder)); n != 1 {
		t.Fatalf("%d fulfillments, want 1", n)
	}
}

// Shopify answers 500 to every call: exactly 3 attempts, one escalation, and
// the shipment stays pending.
func TestSyncTrackingOutageThreeAttemptsThenEscalation(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.sandbox.Shopify.AddOrder(paidOrder, 1)
	sh, payload := o.saveShipment(paidOrder, "1Z999AA10123456784")
	o.sandbox.AddFault(sandbox.Fault{Service: shopifytest.Service, Status: http.StatusInternalServerError})
	id := o.enqueue("order:sync_tracking", payload)
	o.waitEscalated(id, 3, "transient", "HTTP 500")
	if n := len(o.sandbox.Calls(shopifytest.Service)); n != 3 {
		t.Fatalf("Shopify was called %d times, want once per attempt (3)", n)
	}
	if state := o.syncState(sh.ID); state != "pending" {
		t.Fatalf("shipment %s, want pending", state)
	}
}

// The merchant put the order on hold: fulfillmentCreate answers userErrors,
// which is permanent — one attempt, one escalation with Shopify's words, and
// the shipment stays pending.
func TestSyncTrackingUserErrorsEscalateAfterOneAttempt(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.sandbox.Shopify.AddOrder(paidOrder, 1)
	o.sandbox.Shopify.HoldOrder(paidOrder)
	sh, payload := o.saveShipment(paidOrder, "1Z999AA10123456784")
	id := o.enqueue("order:sync_tracking", payload)
	o.waitEscalated(id, 1, "permanent", "userErrors")
	if esc := o.escalations()[0]; !strings.Contains(esc.Text, "unfulfillable status= on_hold") {
		t.Errorf("the escalation lacks Shopify's reason:\n%s", esc.Text)
	}
	if n := len(o.sandbox.Calls(shopifytest.Service)); n != 2 {
		t.Fatalf("Shopify was called %d times, want the order query and one fulfillmentCreate", n)
	}
	if state := o.syncState(sh.ID); state != "pending" {
		t.Fatalf("shipment %s, want pending", state)
	}
}

// Shopify refuses errand's credentials (HTTP 401): permanent, one attempt.
func TestSyncTrackingRefusedCredentialsEscalateAfterOneAttempt(t *testing.T) {
	t.Parallel()
	o := startOrderStack(t)
	o.sandbox.Shopify.AddOrder(paidOrder, 1)
	_, payload := o.saveShipment(paidOrder, "1Z999AA10123456784")
	o.sandbox.AddFault(sandbox.Fault{Service: shopifytest.Service, Status: http.StatusUnauthorized})
	id := o.enqueue("order:sync_tracking", payload)
	o.waitEscalated(id, 1, "permanent", "HTTP 401")
	if n := len(o.sandbox.Calls(shopifytest.Service)); n != 1 {
		t.Fatalf("Shopify was called %d times, want once", n)
	}
}
