// Package shopify is errand's client for Shopify's GraphQL Admin API:
// POST {base_url}/admin/api/{api_version}/graphql.json with the app's
// X-Shopify-Access-Token. errand reads an order's fulfillment orders and
// fulfillments, then creates a fulfillment with the tracking number
// (fulfillmentCreate) or updates the tracking of the one that exists
// (fulfillmentTrackingInfoUpdate).
//
// How answers are classed:
//   - userErrors on a mutation, an order that does not exist, HTTP 401, 402,
//     403, 404, 423 (and other 4xx), GraphQL errors other than THROTTLED and
//     INTERNAL_SERVER_ERROR (ACCESS_DENIED, SHOP_INACTIVE, MAX_COST_EXCEEDED,
//     a query Shopify cannot parse): permanent;
//   - GraphQL THROTTLED (HTTP 200): throttled, waiting (requestedQueryCost −
//     currentlyAvailable) / restoreRate seconds from extensions.cost, at least
//     1 s; HTTP 429 and 503: throttled, waiting as Retry-After says (2 s when
//     it does not);
//   - other 5xx, INTERNAL_SERVER_ERROR, network errors: transient.
package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/go-resty/resty/v2"
)

// throttleFallback is the wait after HTTP 429/503 without Retry-After, or a
// THROTTLED answer without cost figures.
const throttleFallback = 2 * time.Second

// minThrottleWait keeps a computed wait from being so short that the retry is
// throttled again at once.
const minThrottleWait = time.Second

// Client calls the GraphQL Admin API of one shop.
type Client struct {
	rc    *resty.Client
	token string
	path  string
	gate  outbound.CostGate // [limits.shopify] and the shop's cost bucket; nil lets every call go
}

// WithGate makes every GraphQL call ask g first — [limits.shopify], a hold
// after a throttled answer, and whether the shop's cost bucket, shared by
// every worker, covers the query — and tell it the outcome and the bucket's
// figures; it returns c.
func (c *Client) WithGate(g outbound.CostGate) *Client { c.gate = g; return c }

// New returns a client for the [shopify] settings: base_url when set (a
// sandbox), else https://<shop>. timeout 0 means the outbound default.
func New(cfg Config, timeout time.Duration) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shopify: not configured: %w", err)
	}
	return &Client{
		rc:    outbound.New(cfg.baseURL(), timeout),
		token: cfg.AccessToken,
		path:  "/admin/api/" + cfg.APIVersion + "/graphql.json",
	}, nil
}

// Tracking is a shipment's tracking information, as Shopify names it.
type Tracking struct {
	Company string `json:"company,omitempty"`
	Number  string `json:"number"`
	URL     string `json:"url,omitempty"`
}

// Order is what errand reads of an order.
type Order struct {
	ID                string
	FulfillmentOrders []FulfillmentOrder
	Fulfillments      []Fulfillment
}

// FulfillmentOrder is a group of line items to be fulfilled from one
// location.
type FulfillmentOrder struct {
	ID     string `json:"id"`
	Status string `json:"status"` // OPEN, IN_PROGRESS, ON_HOLD, SCHEDULED, INCOMPLETE, CLOSED, CANCELLED
	// Remaining is how many units are still to be fulfilled.
	Remaining int `json:"-"`
}

// Fulfillment is a shipment Shopify knows of.
type Fulfillment struct {
	ID           string     `json:"id"`
	Status       string     `json:"status"` // SUCCESS, CANCELLED, ERROR, FAILURE, …
	TrackingInfo []Tracking `json:"trackingInfo"`
}

// HasTracking reports whether f carries tracking number.
func (f *Fulfillment) HasTracking(number string) bool {
	for _, t := range f.TrackingInfo {
		if t.Number == number {
			return true
		}
	}
	return false
}

// OrderGID is an order's GraphQL id.
func OrderGID(id int64) string { return "gid://shopify/Order/" + strconv.FormatInt(id, 10) }

const orderQuery = `query OrderFulfillments($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 10) {
      nodes {
        id
        status
        lineItems(first: 25) { nodes { id remainingQuantity } }
      }
    }
    fulfillments(first: 10) {
      id
      status
      trackingInfo(first: 10) { number company url }
    }
  }
}`

// Order reads order id's fulfillment orders and fulfillments. An order
// Shopify does not know is a permanent error.
func (c *Client) Order(ctx context.Context, id int64) (*Order, error) {
	var data struct {
		Order *struct {
			ID                string `json:"id"`
			FulfillmentOrders struct {
				Nodes []struct {
					FulfillmentOrder
					LineItems struct {
						Nodes []struct {
							RemainingQuantity int `json:"remainingQuantity"`
						} `json:"nodes"`
					} `json:"lineItems"`
				} `json:"nodes"`
			} `json:"fulfillmentOrders"`
			Fulfillments []Fulfillment `json:"fulfillments"`
		} `json:"order"`
	}
	op := "order " + strconv.FormatInt(id, 10)
	if err := c.do(ctx, op, orderQuery, map[string]any{"id": OrderGID(id)}, &data); err != nil {
		return nil, err
	}
	if data.Order == nil {
		return nil, errand.Permanentf("shopify: %s: no such order in the shop", op)
	}
	o := &Order{ID: data.Order.ID, Fulfillments: data.Order.Fulfillments}
	for _, n := range data.Order.FulfillmentOrders.Nodes {
		fo := n.FulfillmentOrder
		for _, li := range n.LineItems.Nodes {
			fo.Remaining += li.RemainingQuantity
		}
		o.FulfillmentOrders = append(o.FulfillmentOrders, fo)
	}
	return o, nil
}

const fulfillmentFields = `fulfillment { id status trackingInfo(first: 10) { number company url } }
    userErrors { field message }`

const createMutation = `mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    ` + fulfillmentFields + `
  }
}`

// CreateFulfillment fulfills everything that remains of the fulfillment
// orders, with tracking t, and tells the customer.
func (c *Client) CreateFulfillment(ctx context.Context, fulfillmentOrderIDs []string, t Tracking) (*Fulfillment, error) {
	byOrder := make([]map[string]any, 0, len(fulfillmentOrderIDs))
	for _, id := range fulfillmentOrderIDs {
		byOrder = append(byOrder, map[string]any{"fulfillmentOrderId": id})
	}
	vars := map[string]any{"fulfillment": map[string]any{
		"lineItemsByFulfillmentOrder": byOrder,
		"trackingInfo":                t,
		"notifyCustomer":              true,
	}}
	var data struct {
		Payload mutationPayload `json:"fulfillmentCreate"`
	}
	if err := c.do(ctx, "fulfillmentCreate", createMutation, vars, &data); err != nil {
		return nil, err
	}
	return data.Payload.result("fulfillmentCreate")
}

const updateMutation = `mutation FulfillmentTrackingInfoUpdate($fulfillmentId: ID!, $trackingInfoInput: FulfillmentTrackingInput!, $notifyCustomer: Boolean) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $fulfillmentId, trackingInfoInput: $trackingInfoInput, notifyCustomer: $notifyCustomer) {
    ` + fulfillmentFields + `
  }
}`

// UpdateTracking replaces the tracking of fulfillment id with t and tells the
// customer.
func (c *Client) UpdateTracking(ctx context.Context, fulfillmentID string, t Tracking) (*Fulfillment, error) {
	vars := map[string]any{"fulfillmentId": fulfillmentID, "trackingInfoInput": t, "notifyCustomer": true}
	var data struct {
		Payload mutationPayload `json:"fulfillmentTrackingInfoUpdate"`
	}
	if err := c.do(ctx, "fulfillmentTrackingInfoUpdate", updateMutation, vars, &data); err != nil {
		return nil, err
	}
	return data.Payload.result("fulfillmentTrackingInfoUpdate")
}

// mutationPayload is what both mutations answer.
type mutationPayload struct {
	Fulfillment *Fulfillment `json:"fulfillment"`
	UserErrors  []struct {
		Field   []string `json:"field"`
		Message string   `json:"message"`
	} `json:"userErrors"`
}

func (p *mutationPayload) result(op string) (*Fulfillment, error) {
	if len(p.UserErrors) > 0 {
		msgs := make([]string, 0, len(p.UserErrors))
		for _, ue := range p.UserErrors {
			if len(ue.Field) > 0 {
				msgs = append(msgs, strings.Join(ue.Field, ".")+": "+ue.Message)
			} else {
				msgs = append(msgs, ue.Message)
			}
		}
		return nil, errand.Permanentf("shopify: %s: userErrors: %s", op, strings.Join(msgs, "; "))
	}
	if p.Fulfillment == nil {
		return nil, errand.TransientError(fmt.Errorf("shopify: %s: answer has neither a fulfillment nor userErrors", op))
	}
	return p.Fulfillment, nil
}

// Outcome says what SyncTracking did.
type Outcome string

const (
	Created       Outcome = "created"        // a new fulfillment with the tracking
	Updated       Outcome = "updated"        // the tracking of the existing fulfillment replaced
	AlreadySynced Outcome = "already synced" // a fulfillment already carries the number
)

// SyncTracking puts tracking t on order orderID, once:
//   - a fulfillment already carrying t.Number means an earlier attempt got
//     through (its answer may have been lost): nothing is sent;
//   - fulfillment orders with units left are fulfilled with t
//     (fulfillmentCreate); Shopify refuses ones on hold with userErrors;
//   - otherwise the order was fulfilled without this number (by hand, or with
//     a number since corrected): the latest fulfillment's tracking is
//     replaced (fulfillmentTrackingInfoUpdate).
func (c *Client) SyncTracking(ctx context.Context, orderID int64, t Tracking) (Outcome, *Fulfillment, error) {
	o, err := c.Order(ctx, orderID)
	if err != nil {
		return "", nil, err
	}
	var latest *Fulfillment
	for i := range o.Fulfillments {
		f := &o.Fulfillments[i]
		if f.HasTracking(t.Number) {
			return AlreadySynced, f, nil
		}
		if f.Status != "CANCELLED" {
			latest = f
		}
	}
	var open []string
	for _, fo := range o.FulfillmentOrders {
		if fo.Remaining > 0 && fo.Status != "CLOSED" && fo.Status != "CANCELLED" {
			open = append(open, fo.ID)
		}
	}
	switch {
	case len(open) > 0:
		f, err := c.CreateFulfillment(ctx, open, t)
		return Created, f, err
	case latest != nil:
		f, err := c.UpdateTracking(ctx, latest.ID, t)
		return Updated, f, err
	default:
		// Shopify hides fulfillment orders an app has no scope for, so an
		// unfulfilled order can look like this too.
		return "", nil, errand.Permanentf("shopify: order %d: no fulfillment order left to fulfill and no fulfillment to update "+
			"(if the order is unfulfilled, the app may lack the merchant-managed fulfillment order scopes)", orderID)
	}
}

// gqlError is one entry of a GraphQL "errors" list.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// cost is extensions.cost, sent with every answer.
type cost struct {
	RequestedQueryCost float64 `json:"requestedQueryCost"`
	ThrottleStatus     struct {
		MaximumAvailable   float64 `json:"maximumAvailable"`
		CurrentlyAvailable float64 `json:"currentlyAvailable"`
		RestoreRate        float64 `json:"restoreRate"`
	} `json:"throttleStatus"`
}

// envelope is a GraphQL answer. errors is raw because Shopify sends a plain
// string there for some failures.
type envelope struct {
	Data       json.RawMessage `json:"data"`
	Errors     json.RawMessage `json:"errors"`
	Extensions struct {
		Cost *cost `json:"cost"`
	} `json:"extensions"`
}

// do runs one GraphQL operation, once the gate lets it, and decodes its data
// into out.
func (c *Client) do(ctx context.Context, op, query string, vars map[string]any, out any) error {
	return outbound.Call(ctx, c.gate, "shopify", func() error {
		if c.gate == nil {
			_, err := c.post(ctx, op, query, vars, out)
			return err
		}
		kind := operationName(query)
		reservation, err := c.gate.WaitCost(ctx, "shopify", kind)
		if err != nil {
			return err
		}
		spent, err := c.post(ctx, op, query, vars, out)
		// Even when the job's context is over, the bucket must get its
		// reservation back.
		c.gate.Spent(context.WithoutCancel(ctx), "shopify", kind, reservation, spent)
		return err
	})
}

// operationName is the name a query or mutation is declared with
// ("query OrderFulfillments(…"): the kind of call whose cost the bucket keeps.
func operationName(query string) string {
	f := strings.Fields(query)
	if len(f) < 2 {
		return "anonymous"
	}
	name, _, _ := strings.Cut(f[1], "(")
	return name
}

// post sends one GraphQL operation and decodes its data into out; it returns
// the answer's cost figures, nil when it had none.
func (c *Client) post(ctx context.Context, op, query string, vars map[string]any, out any) (*outbound.Cost, error) {
	resp, err := c.rc.R().
		SetContext(ctx).
		SetHeader("Content-Type", "application/json").
		SetHeader("X-Shopify-Access-Token", c.token).
		SetBody(map[string]any{"query": query, "variables": vars}).
		Post(c.path)
	var env envelope
	if resp != nil {
		_ = json.Unmarshal(resp.Body(), &env) // for the cost figures, whatever the status
	}
	spent := env.Extensions.Cost.spent()
	if err := checkHTTP(op, resp, err); err != nil {
		return spent, err
	}
	if err := json.Unmarshal(resp.Body(), &env); err != nil {
		return spent, errand.TransientError(fmt.Errorf("shopify: %s: unreadable answer: %w", op, err))
	}
	if errs := parseErrors(env.Errors); len(errs) > 0 {
		return spent, classifyErrors(op, errs, env.Extensions.Cost)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return spent, errand.TransientError(fmt.Errorf("shopify: %s: unreadable data: %w", op, err))
	}
	return spent, nil
}

// spent is the cost figures as the gate keeps them; nil without figures.
func (c *cost) spent() *outbound.Cost {
	if c == nil || c.ThrottleStatus.MaximumAvailable <= 0 {
		return nil
	}
	s := &outbound.Cost{
		Requested:   c.RequestedQueryCost,
		Maximum:     c.ThrottleStatus.MaximumAvailable,
		Available:   c.ThrottleStatus.CurrentlyAvailable,
		RestoreRate: c.ThrottleStatus.RestoreRate,
	}
	return s
}

// checkHTTP classes a non-2xx answer; Shopify's 503 means "come back later"
// even without Retry-After, and a 429 may say how long in its cost figures.
func checkHTTP(op string, resp *resty.Response, err error) error {
	err = outbound.Check("shopify", op, resp, err, throttleFallback)
	var se *outbound.StatusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	_, hasRetryAfter := outbound.RetryAfter(resp.Header(), time.Now())
	switch se.Status {
	case http.StatusServiceUnavailable:
		if !hasRetryAfter {
			return errand.ThrottledError(se, throttleFallback)
		}
	case http.StatusTooManyRequests:
		var env envelope
		if !hasRetryAfter && json.Unmarshal(resp.Body(), &env) == nil && env.Extensions.Cost != nil {
			return errand.ThrottledError(se, throttleWait(env.Extensions.Cost))
		}
	}
	return err
}

func parseErrors(raw json.RawMessage) []gqlError {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []gqlError
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var msg string
	if json.Unmarshal(raw, &msg) == nil && msg != "" {
		return []gqlError{{Message: msg}}
	}
	return []gqlError{{Message: string(raw)}}
}

func classifyErrors(op string, errs []gqlError, c *cost) error {
	msgs := make([]string, 0, len(errs))
	throttled, internal := false, false
	for _, e := range errs {
		m := e.Message
		if e.Extensions.Code != "" {
			m += " (" + e.Extensions.Code + ")"
		}
		msgs = append(msgs, m)
		switch e.Extensions.Code {
		case "THROTTLED":
			throttled = true
		case "INTERNAL_SERVER_ERROR":
			internal = true
		}
	}
	err := fmt.Errorf("shopify: %s: %s", op, strings.Join(msgs, "; "))
	switch {
	case throttled:
		return errand.ThrottledError(err, throttleWait(c))
	case internal:
		return errand.TransientError(err)
	default:
		return errand.PermanentError(err)
	}
}

// throttleWait is how long until the bucket holds the query's cost again.
func throttleWait(c *cost) time.Duration {
	if c == nil || c.ThrottleStatus.RestoreRate <= 0 {
		return throttleFallback
	}
	short := c.RequestedQueryCost - c.ThrottleStatus.CurrentlyAvailable
	wait := time.Duration(short / c.ThrottleStatus.RestoreRate * float64(time.Second))
	return max(wait, minThrottleWait)
}
