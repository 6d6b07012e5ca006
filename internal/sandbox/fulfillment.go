package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The fulfillment gateway fake: POST /api/v2, Mabang-style. As such gateways
// do, it answers HTTP 200 with the outcome in "code", checks the appkey, the
// Authorization HMAC over the raw body and the timestamp before anything
// else, and refuses a platformOrderId it has seen (so a retried push is
// recognised, not shipped twice).
func init() {
	registrars = append(registrars, func(s *Sandbox) {
		s.Handle(Fulfillment, "POST /api/v2", s.fulfillmentAPI)
	})
}

// The fake's answer codes; internal/fulfillment's documentation lists how
// errand classes them.
const (
	fulfillOK             = "200"
	fulfillBadAppKey      = "1001"
	fulfillBadSignature   = "1002"
	fulfillBadTimestamp   = "1003"
	fulfillUnknownAPI     = "1004"
	fulfillInvalidData    = "2001"
	fulfillDuplicateOrder = "2002"
)

// fulfillmentSkew is how far a request's timestamp may be from the gateway's
// clock.
const fulfillmentSkew = 5 * time.Minute

var tenDigits = regexp.MustCompile(`^[0-9]{10}$`)

type fulfillmentState struct {
	mu     sync.Mutex
	orders []json.RawMessage // the data of each order created, as received
	ids    map[string]string // platformOrderId → the gateway's order id
}

func (s *Sandbox) fulfillment() *fulfillmentState {
	return State(s, Fulfillment, func() *fulfillmentState { return &fulfillmentState{ids: map[string]string{}} })
}

// FulfillmentOrders returns the data of every order the gateway created,
// oldest first.
func (s *Sandbox) FulfillmentOrders() []map[string]any {
	st := s.fulfillment()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]map[string]any, 0, len(st.orders))
	for _, raw := range st.orders {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		out = append(out, m)
	}
	return out
}

func (s *Sandbox) fulfillmentAPI(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	cfg := s.Config().Fulfill
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
		return refuse(fulfillInvalidData, "request body is not valid JSON")
	}
	if req.AppKey == "" || !hmac.Equal([]byte(req.AppKey), []byte(cfg.AppKey)) {
		return refuse(fulfillBadAppKey, "appkey is invalid")
	}
	got, err := hex.DecodeString(strings.TrimSpace(r.Header.Get("Authorization")))
	mac := hmac.New(sha256.New, []byte(cfg.AppSecret))
	mac.Write(body)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return refuse(fulfillBadSignature, "signature verification failed")
	}
	ts := strings.Trim(string(req.Timestamp), `"`)
	if !tenDigits.MatchString(ts) {
		return refuse(fulfillBadTimestamp, "timestamp must be unix seconds (10 digits)")
	}
	secs, _ := strconv.ParseInt(ts, 10, 64)
	if d := time.Since(time.Unix(secs, 0)); d > fulfillmentSkew || d < -fulfillmentSkew {
		return refuse(fulfillBadTimestamp, "timestamp expired")
	}
	if req.API != "order-do-create-order" || req.Version != "2" {
		return refuse(fulfillUnknownAPI, fmt.Sprintf("api %q version %q is not supported", req.API, req.Version))
	}
	id, problem := checkFulfillmentOrder(req.Data)
	if problem != "" {
		return refuse(fulfillInvalidData, "parameter validation failed: "+problem)
	}
	st := s.fulfillment()
	st.mu.Lock()
	defer st.mu.Unlock()
	if prev, dup := st.ids[id]; dup {
		return refuse(fulfillDuplicateOrder, fmt.Sprintf("order already exists: platformOrderId %s (%s)", id, prev))
	}
	ref := fmt.Sprintf("MB%08d", len(st.orders)+1)
	st.ids[id] = ref
	st.orders = append(st.orders, bytes.Clone(req.Data))
	writeJSON(w, http.StatusOK, map[string]any{"code": fulfillOK, "message": "success",
		"data": map[string]any{"platformOrderId": id, "orderId": ref}})
	return http.StatusOK, "order " + id + " created as " + ref
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// checkFulfillmentOrder validates an order's data the way a warehouse
// gateway must: who, where and what to ship. It returns the platformOrderId,
// or what is wrong.
func checkFulfillmentOrder(raw json.RawMessage) (id, problem string) {
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
