package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The order flow as README walks it: a signed orders/paid webhook → the push
// to the fulfillment platform; the platform's signed tracking callback → the
// tracking number on the Shopify order, and the shipment marked synced. The
// webhooks are sent with `errand sandbox send-order` / `send-tracking`.
func TestOrderFlowEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.sandbox.Shopify.AutoCreateOrders(true)
	out, err := s.cli("sandbox", "send-order", "--order", "4400000001", "--to", s.base)
	if err != nil || !strings.Contains(out, "200 OK") {
		t.Fatalf("send-order: %v %s", err, out)
	}
	s.waitFor(15*time.Second, "the push to the fulfillment platform", func() bool { return len(s.sandbox.Fulfillment.Orders()) == 1 })
	pushed := s.sandbox.Fulfillment.Orders()[0]
	if got := pushed["platformOrderId"]; got != "4400000001" {
		t.Fatalf("pushed platformOrderId %v: %v", got, pushed)
	}
	// The same webhook again (Shopify retries deliveries): nothing new.
	if out, err := s.cli("sandbox", "send-order", "--order", "4400000001", "--event", "again", "--to", s.base); err != nil || !strings.Contains(out, "duplicate") {
		t.Fatalf("repeat: %v %s", err, out)
	}
	out, err = s.cli("sandbox", "send-tracking", "--order", "4400000001", "--tracking", "1ZTRACK0001", "--to", s.base)
	if err != nil || !strings.Contains(out, "200 OK") {
		t.Fatalf("send-tracking: %v %s", err, out)
	}
	s.waitFor(15*time.Second, "the tracking number on the Shopify order", func() bool {
		for _, f := range s.sandbox.Shopify.Fulfillments(4400000001) {
			for _, ti := range f.TrackingInfo {
				if ti.Number == "1ZTRACK0001" {
					return true
				}
			}
		}
		return false
	})
	s.waitFor(5*time.Second, "the shipment to be marked synced", func() bool {
		sh, err := s.db().GetShipment(context.Background(), 1)
		return err == nil && sh.SyncState == "synced"
	})
	time.Sleep(time.Second)
	if n := len(s.sandbox.Fulfillment.Orders()); n != 1 {
		t.Fatalf("%d pushes to the fulfillment platform, want 1", n)
	}
	if f := s.failed(); len(f) != 0 {
		t.Fatalf("failed jobs: %v", f)
	}
}
