package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
)

// cmdSandboxSend sends a correctly signed sample Shopify orders/paid webhook
// or fulfillment tracking callback to errand serve, so the order flow can be
// walked by hand.
func cmdSandboxSend(ctx context.Context, what string, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("sandbox "+what, "sandbox send-order [--order ID] [--event ID] | sandbox send-tracking --order ID [--tracking NUMBER]", stderr)
	order := f.Int64("order", 0, "the Shopify order id (send-order: default a new one from the clock)")
	event := f.String("event", "", "X-Shopify-Event-Id (send-order; default a new one)")
	tracking := f.String("tracking", "", "tracking number (send-tracking; default one derived from the order)")
	to := f.String("to", "", "errand's base URL (default http.public_url)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	cfg, err := f.load(environ)
	if err != nil {
		return err
	}
	base := *to
	if base == "" {
		base = cfg.HTTP.PublicURL
	}
	var body []byte
	var header http.Header
	var path string
	switch what {
	case "send-order":
		if *order == 0 {
			*order = time.Now().Unix()
		}
		if *event == "" {
			*event = fmt.Sprintf("sample-%d", time.Now().UnixNano())
		}
		if cfg.Shopify.WebhookSecret == "" {
			return errors.New("shopify.webhook_secret is empty: errand would refuse any webhook (scripts/dev.sh sets one)")
		}
		body, header = shopifytest.OrderPaid(cfg.Shopify, *order, *event)
		path = "/webhooks/shopify/orders-paid"
	default:
		if *order == 0 {
			return f.missing("sandbox send-tracking: --order is required (the id of an order sent with send-order)")
		}
		if *tracking == "" {
			*tracking = fmt.Sprintf("1Z%012d", *order%1_000_000_000_000)
		}
		if cfg.Fulfill.CallbackSecret == "" {
			return errors.New("fulfillment.callback_secret is empty: errand would refuse any callback (scripts/dev.sh sets one)")
		}
		body, header = fulfillmenttest.TrackingCallback(cfg.Fulfill.CallbackSecret, *order, *tracking, time.Now())
		path = "/webhooks/fulfillment/tracking"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	fmt.Fprintf(stdout, "POST %s (order %d) → %s %s", path, *order, resp.Status, answer)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("errand answered %s", resp.Status)
	}
	return nil
}
