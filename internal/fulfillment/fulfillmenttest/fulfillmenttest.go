// Package fulfillmenttest is a fake of the fulfillment gateway (Mabang-style)
// for tests and the sandbox: POST /api/v2. As such gateways do, it answers
// HTTP 200 with the outcome in "code" (the codes internal/fulfillment
// documents), checks the appkey, the Authorization HMAC over the raw body and
// the timestamp before anything else, and refuses a platformOrderId it has
// seen (so a retried push is recognised, not shipped twice). It also builds
// the tracking callbacks the platform sends errand (TrackingCallback). The
// sandbox (internal/sandbox) serves it with fault injection and a call log.
package fulfillmenttest

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/fulfillment"
)

// Service names the fake in the sandbox's faults and call log.
const Service = "fulfillment"

// Skew is how far a request's timestamp may be from the gateway's clock.
const Skew = 5 * time.Minute

var (
	tenDigits = regexp.MustCompile(`^[0-9]{10}$`)
	digits    = regexp.MustCompile(`^[0-9]+$`)
)

// Fake is the gateway of one app.
type Fake struct {
	appKey, appSecret string

	mu     sync.Mutex
	orders []json.RawMessage // the data of each order created, as received
	ids    map[string]string // platformOrderId → the gateway's order id
}

// New returns a gateway that takes the app in cfg (fulfillment.app_key and
// fulfillment.app_secret); with an empty app_key, every call is refused.
func New(cfg fulfillment.Config) *Fake {
	return &Fake{appKey: cfg.AppKey, appSecret: cfg.AppSecret, ids: map[string]string{}}
}

// Service implements sandbox.Fake.
func (f *Fake) Service() string { return Service }

// Routes implements sandbox.Fake.
func (f *Fake) Routes() map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string) {
	return map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string){
		"POST /api/v2": f.api,
	}
}

// Orders returns the data of every order created, oldest first.
func (f *Fake) Orders() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]any, 0, len(f.orders))
	for _, raw := range f.orders {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		out = append(out, m)
	}
	return out
}

func (f *Fake) api(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	refuse := func(code, msg string) (int, string) {
		writeJSON(w, http.StatusOK, map[string]any{"code": code, "message": msg, "data": nil})
		return http.StatusOK, "code " + code + ": " + msg
	}
	var req struct {
		API       string          `json:"api"`
		AppKey    string          `json:"appkey"`
		Data      json.RawMessage `json:"data"`
		Timestamp json.RawMessage `json:"timestamp"`
		Version   string          `json:"version"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return refuse(fulfillment.CodeInvalidData, "request body is not valid JSON")
	}
	if req.AppKey == "" || !hmac.Equal([]byte(req.AppKey), []byte(f.appKey)) {
		return refuse(fulfillment.CodeBadAppKey, "appkey is invalid")
	}
	if fulfillment.VerifyRequest(f.appSecret, body, r.Header.Get("Authorization")) != nil {
		return refuse(fulfillment.CodeBadSignature, "signature verification failed")
	}
	ts := strings.Trim(string(req.Timestamp), `"`)
	if !tenDigits.MatchString(ts) {
		return refuse(fulfillment.CodeBadTimestamp, "timestamp must be unix seconds (10 digits)")
	}
	secs, _ := strconv.ParseInt(ts, 10, 64)
	if d := time.Since(time.Unix(secs, 0)); d > Skew || d < -Skew {
		return refuse(fulfillment.CodeBadTimestamp, "timestamp expired")
	}
	if req.API != "order-do-create-order" || req.Version != "2" {
		return refuse(fulfillment.CodeUnknownAPI, fmt.Sprintf("api %q version %q is not supported", req.API, req.Version))
	}
	id, problem := checkOrder(req.Data)
	if problem != "" {
		return refuse(fulfillment.CodeInvalidData, "parameter validation failed: "+problem)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, dup := f.ids[id]; dup {
		return refuse(fulfillment.CodeDuplicateOrder, fmt.Sprintf("order already exists: platformOrderId %s (%s)", id, prev))
	}
	ref := fmt.Sprintf("MB%08d", len(f.orders)+1)
	f.ids[id] = ref
	f.orders = append(f.orders, bytes.Clone(req.Data))
	writeJSON(w, http.StatusOK, map[string]any{"code": fulfillment.CodeOK, "message": "success",
		"data": map[string]any{"platformOrderId": id, "orderId": ref}})
	return http.StatusOK, "order " + id + " created as " + ref
}

// checkOrder validates an order's data the way a warehouse gateway must:
// who, where and what to ship. It returns the platformOrderId, or what is
// wrong.
func checkOrder(raw json.RawMessage) (id, problem string) {
	var d struct {
		PlatformOrderID any `json:"platformOrderId"`
		Items           []struct {
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		} `json:"items"`
		Shipping *struct {
			Name        string `json:"name"`
			Address1    string `json:"address1"`
			City        string `json:"city"`
			CountryCode string `json:"countryCode"`
		} `json:"shipping"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return "", "data: " + err.Error()
	}
	id, ok := d.PlatformOrderID.(string)
	if !ok || !digits.MatchString(id) {
		return "", "platformOrderId must be a string of digits"
	}
	if len(d.Items) == 0 {
		return id, "items must not be empty"
	}
	for i, it := range d.Items {
		if it.SKU == "" || it.Quantity < 1 {
			return id, fmt.Sprintf("items[%d] needs a sku and a quantity of at least 1", i)
		}
	}
	switch sh := d.Shipping; {
	case sh == nil:
		return id, "shipping is required"
	case sh.Name == "" || sh.Address1 == "" || sh.City == "" || sh.CountryCode == "":
		return id, "shipping needs name, address1, city and countryCode"
	}
	return id, ""
}

// TrackingCallback builds the platform's shipped callback for order orderID:
// tracking number tracking with UPS, sent — and shipped — at at, signed with
// callbackSecret (fulfillment.callback_secret) over at's unix seconds, ".",
// and the body. A stale at makes a callback errand must refuse.
func TrackingCallback(callbackSecret string, orderID int64, tracking string, at time.Time) (body []byte, header http.Header) {
	body, _ = json.Marshal(map[string]any{
		"order_no":        strconv.FormatInt(orderID, 10),
		"tracking_number": tracking,
		"carrier":         "UPS",
		"tracking_url":    "https://www.ups.com/track?tracknum=" + url.QueryEscape(tracking),
		"shipped_at":      at.UTC().Format(time.RFC3339),
	})
	ts := strconv.FormatInt(at.Unix(), 10)
	header = http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("X-Timestamp", ts)
	header.Set("X-Signature", fulfillment.SignCallback(callbackSecret, ts, body))
	return body, header
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
