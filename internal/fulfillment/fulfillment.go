// Package fulfillment is errand's client for the fulfillment platform, a
// Mabang-style gateway: one endpoint, POST {base_url}/api/v2, taking
// {"api","appkey","data","timestamp","version"} signed with
// Authorization: hex(HMAC-SHA256(app_secret, raw body)), and answering
// {"code","message","data"} — HTTP 200 even when the call failed, with the
// outcome in "code".
//
// Answer codes and what errand makes of them. The gateway's own list is not
// public; errand's sandbox answers with these, and a code not listed is
// transient — when in doubt, try again.
//
//	code            meaning                                        class
//	"200", 0        created                                        success
//	2002            platformOrderId already created: an earlier    success
//	                attempt got through but its answer was lost
//	401, 403        authentication refused                         permanent
//	1001            unknown or disabled appkey                     permanent
//	1002            signature does not match the body              permanent
//	1003            timestamp malformed or off the gateway's clock permanent
//	1004            unknown api or version                         permanent
//	400, 422, 2001  the data failed validation                     permanent
//	429             rate limited                                   throttled, 2 s
//	anything else   e.g. 500, 5000 "system busy"                   transient
//
// Codes may come as JSON strings or numbers; both are read.
package fulfillment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/outbound"
	"github.com/go-resty/resty/v2"
)

// The call errand makes.
const (
	path           = "/api/v2"
	apiCreateOrder = "order-do-create-order"
	version        = "2"
)

// Answer codes; see the package documentation for their classes.
const (
	CodeOK             = "200"
	CodeBadAppKey      = "1001"
	CodeBadSignature   = "1002"
	CodeBadTimestamp   = "1003"
	CodeUnknownAPI     = "1004"
	CodeInvalidData    = "2001"
	CodeDuplicateOrder = "2002"
	CodeRateLimited    = "429"
)

// permanentCodes are refusals a retry cannot mend: credentials, signature,
// clock, or the order's data.
var permanentCodes = map[string]bool{
	"400": true, "401": true, "403": true, "422": true,
	CodeBadAppKey: true, CodeBadSignature: true, CodeBadTimestamp: true,
	CodeUnknownAPI: true, CodeInvalidData: true,
}

// throttleFallback is the wait after a rate-limit answer that does not say
// how long to wait.
const throttleFallback = 2 * time.Second

// Client calls the gateway.
type Client struct {
	rc     *resty.Client
	appKey string
	secret string
	now    func() time.Time
	gate   outbound.Gate // [limits.fulfillment]; nil lets every call go
}

// WithGate makes every call ask g first ([limits.fulfillment]) and tell it
// the outcome; it returns c.
func (c *Client) WithGate(g outbound.Gate) *Client { c.gate = g; return c }

// New returns a client for the [fulfillment] settings. timeout 0 means the
// outbound default.
func New(cfg Config, timeout time.Duration) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fulfillment: not configured: %w", err)
	}
	return &Client{rc: outbound.New(cfg.BaseURL, timeout), appKey: cfg.AppKey, secret: cfg.AppSecret, now: time.Now}, nil
}

// Order is the data of order-do-create-order.
type Order struct {
	// PlatformOrderID is the Shopify order's numeric id as a string; the
	// platform's tracking callback names the order by it (order_no).
	PlatformOrderID string   `json:"platformOrderId"`
	OrderName       string   `json:"orderName,omitempty"`
	BuyerName       string   `json:"buyerName"`
	BuyerEmail      string   `json:"buyerEmail"`
	Currency        string   `json:"currency"`
	OrderAmount     string   `json:"orderAmount"`
	Items           []Item   `json:"items"`
	Shipping        *Address `json:"shipping,omitempty"`
}

// Item is one order line.
type Item struct {
	SKU      string `json:"sku"`
	Title    string `json:"title"`
	Quantity int    `json:"quantity"`
	Price    string `json:"price"`
}

// Address is where the parcel goes.
type Address struct {
	Name        string `json:"name"`
	Address1    string `json:"address1"`
	Address2    string `json:"address2,omitempty"`
	City        string `json:"city"`
	Zip         string `json:"zip"`
	Province    string `json:"province,omitempty"`
	CountryCode string `json:"countryCode"`
	Phone       string `json:"phone,omitempty"`
}

// shopifyOrder is the part of Shopify's orders/paid webhook the push needs.
type shopifyOrder struct {
	ID         json.Number `json:"id"`
	Name       string      `json:"name"`
	Email      string      `json:"email"`
	Currency   string      `json:"currency"`
	TotalPrice money       `json:"total_price"`
	LineItems  []struct {
		SKU              string `json:"sku"`
		Title            string `json:"title"`
		Quantity         int    `json:"quantity"`
		Price            money  `json:"price"`
		RequiresShipping *bool  `json:"requires_shipping"`
	} `json:"line_items"`
	ShippingAddress *struct {
		Name        string `json:"name"`
		FirstName   string `json:"first_name"`
		LastName    string `json:"last_name"`
		Address1    string `json:"address1"`
		Address2    string `json:"address2"`
		City        string `json:"city"`
		Zip         string `json:"zip"`
		Province    string `json:"province"`
		CountryCode string `json:"country_code"`
		Phone       string `json:"phone"`
	} `json:"shipping_address"`
	Customer *struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	} `json:"customer"`
}

// money is a price as Shopify sends it ("19.90"), kept as text so no float
// rounding creeps into amounts; a bare JSON number is accepted too.
type money string

func (m *money) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*m = money(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("price %s is not a number", b)
	}
	*m = money(n.String())
	return nil
}

// ErrNothingToShip is returned for an order with no line that needs shipping
// (gift cards, downloads): the warehouse has nothing to do.
var ErrNothingToShip = errors.New("nothing to ship")

// OrderFromShopify builds the push for Shopify order id from its orders/paid
// webhook JSON, leaving out lines that need no shipping. The gateway judges
// whether the order is complete enough to ship; only a payload that is not
// an order, or is another order, fails here.
func OrderFromShopify(id int64, webhook []byte) (*Order, error) {
	var so shopifyOrder
	if err := json.Unmarshal(webhook, &so); err != nil {
		return nil, fmt.Errorf("fulfillment: order %d: the saved webhook is not a Shopify order: %w", id, err)
	}
	if so.ID.String() != strconv.FormatInt(id, 10) {
		return nil, fmt.Errorf("fulfillment: order %d: the saved webhook is for order %q", id, so.ID.String())
	}
	o := &Order{
		PlatformOrderID: strconv.FormatInt(id, 10),
		OrderName:       so.Name,
		BuyerEmail:      so.Email,
		Currency:        so.Currency,
		OrderAmount:     string(so.TotalPrice),
		Items:           []Item{},
	}
	for _, li := range so.LineItems {
		if li.RequiresShipping != nil && !*li.RequiresShipping {
			continue
		}
		o.Items = append(o.Items, Item{SKU: li.SKU, Title: li.Title, Quantity: li.Quantity, Price: string(li.Price)})
	}
	if len(so.LineItems) > 0 && len(o.Items) == 0 {
		return nil, fmt.Errorf("fulfillment: order %d: %w", id, ErrNothingToShip)
	}
	if c := so.Customer; c != nil {
		o.BuyerName = strings.TrimSpace(c.FirstName + " " + c.LastName)
	}
	if a := so.ShippingAddress; a != nil {
		name := a.Name
		if name == "" {
			name = strings.TrimSpace(a.FirstName + " " + a.LastName)
		}
		o.Shipping = &Address{Name: name, Address1: a.Address1, Address2: a.Address2, City: a.City, Zip: a.Zip,
			Province: a.Province, CountryCode: a.CountryCode, Phone: a.Phone}
		if o.BuyerName == "" {
			o.BuyerName = name
		}
	}
	return o, nil
}

// request is the gateway's envelope; the field order is the wire order.
type request struct {
	API       string `json:"api"`
	AppKey    string `json:"appkey"`
	Data      any    `json:"data"`
	Timestamp int64  `json:"timestamp"`
	Version   string `json:"version"`
}

// answer is the gateway's reply.
type answer struct {
	Code    json.RawMessage `json:"code"`
	Message json.RawMessage `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// Result is a successful create.
type Result struct {
	// Data is the gateway's "data", as sent.
	Data json.RawMessage
	// AlreadyCreated is true when the gateway already had the order: an
	// earlier attempt reached it but its answer was lost.
	AlreadyCreated bool
}

// CreateOrder pushes o (order-do-create-order), once the gate lets it.
// Errors carry their class.
func (c *Client) CreateOrder(ctx context.Context, o *Order) (*Result, error) {
	var res *Result
	err := outbound.Call(ctx, c.gate, "fulfillment", func() (err error) {
		res, err = c.createOrder(ctx, o)
		return err
	})
	return res, err
}

func (c *Client) createOrder(ctx context.Context, o *Order) (*Result, error) {
	op := "create order " + o.PlatformOrderID
	body, err := c.sign(apiCreateOrder, o)
	if err != nil {
		return nil, errand.PermanentError(fmt.Errorf("fulfillment: %s: %w", op, err))
	}
	resp, err := c.rc.R().
		SetContext(ctx).
		SetHeader("Content-Type", "application/json").
		SetHeader("Authorization", Sign(c.secret, body)).
		SetBody(body).
		Post(path)
	if err := outbound.Check("fulfillment", op, resp, err, throttleFallback); err != nil {
		return nil, err
	}
	var a answer
	if err := json.Unmarshal(resp.Body(), &a); err != nil || len(a.Code) == 0 {
		// Something other than the gateway answered; whether the order got
		// through is unknown, and a retry is safe (a repeat is recognised).
		return nil, errand.TransientError(fmt.Errorf("fulfillment: %s: HTTP %d without a gateway answer: %q", op, resp.StatusCode(), shorten(string(resp.Body()), 200)))
	}
	code, msg := codeString(a.Code), text(a.Message)
	switch {
	case code == CodeOK || code == "0":
		return &Result{Data: a.Data}, nil
	case code == CodeDuplicateOrder:
		return &Result{Data: a.Data, AlreadyCreated: true}, nil
	}
	err = fmt.Errorf("fulfillment: %s: code %s: %s", op, code, msg)
	switch {
	case permanentCodes[code]:
		return nil, errand.PermanentError(err)
	case code == CodeRateLimited:
		return nil, errand.ThrottledError(err, throttleFallback)
	default:
		return nil, errand.TransientError(err)
	}
}

// sign builds the request body for api with data. The body is marshalled
// once: the signature covers exactly the bytes sent.
func (c *Client) sign(api string, data any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(request{API: api, AppKey: c.appKey, Data: data, Timestamp: c.now().Unix(), Version: version}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// codeString reads a code sent as a JSON string or number.
func codeString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := n.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return n.String()
	}
	return string(raw)
}

// text reads a message sent as a JSON string, or shows whatever else it is.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return shorten(s, 300)
	}
	return shorten(string(raw), 300)
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
