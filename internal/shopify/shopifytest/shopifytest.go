// Package shopifytest is a fake of Shopify's GraphQL Admin API for tests and
// the sandbox: POST /admin/api/{version}/graphql.json, a tiny subset — the
// order query (fulfillmentOrders, fulfillments) and the fulfillmentCreate and
// fulfillmentTrackingInfoUpdate mutations. It does not parse GraphQL: it
// finds which field the query asks for and reads the inputs from
// "variables", which is how errand sends them, and answers the whole object
// whatever the selection. Like Shopify it checks the access token, answers
// 200 with "errors" or "userErrors" for what it refuses, sends
// extensions.cost with every answer, keeps the app's cost bucket as Shopify
// does (a query needs its requested cost available, which is set aside while
// it runs and refunded down to its actual cost after; the bucket refills at
// its restore rate), and throttles with HTTP 200 and a THROTTLED error when
// the bucket cannot cover a query. It also builds the orders/paid webhooks Shopify sends
// errand (OrderPaid). The sandbox (internal/sandbox) serves it with fault
// injection and a call log.
package shopifytest

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/errandhq/errand/internal/shopify"
)

// Service names the fake in the sandbox's faults and call log.
const Service = "shopify"

// Fake is one shop's Admin API.
type Fake struct {
	accessToken, apiVersion string

	bucket costBucket

	mu         sync.Mutex
	autoCreate bool
	orders     map[int64]*order
	lastID     int
}

// New returns the shop of cfg: it takes cfg's access token and serves cfg's
// API version (any well-formed one when it is empty). With no access token,
// every call is refused.
func New(cfg shopify.Config) *Fake {
	return &Fake{accessToken: cfg.AccessToken, apiVersion: cfg.APIVersion, orders: map[int64]*order{},
		bucket: costBucket{max: bucket, rate: restoreRate, avail: bucket}}
}

// SetBucket makes the shop's cost bucket maximum points, refilled at
// restoreRate points a second, full now; each query holds its requested cost
// for work before it is answered (0: answered at once).
func (s *Fake) SetBucket(maximum, restoreRate float64, work time.Duration) {
	s.bucket.mu.Lock()
	defer s.bucket.mu.Unlock()
	s.bucket.max, s.bucket.rate, s.bucket.avail, s.bucket.at, s.bucket.work = maximum, restoreRate, maximum, time.Time{}, work
}

// Throttled is how many queries the bucket could not cover (THROTTLED
// answers; injected faults not counted).
func (s *Fake) Throttled() int {
	s.bucket.mu.Lock()
	defer s.bucket.mu.Unlock()
	return s.bucket.throttled
}

// costBucket is the app's bucket of query cost points on the shop.
type costBucket struct {
	mu        sync.Mutex
	max, rate float64
	avail     float64
	at        time.Time
	work      time.Duration
	throttled int
}

// refill brings avail to now; b.mu must be held.
func (b *costBucket) refill(now time.Time) {
	if !b.at.IsZero() {
		b.avail = min(b.max, b.avail+now.Sub(b.at).Seconds()*b.rate)
	}
	b.at = now
}

// take sets requested aside when the bucket covers it; it returns what is
// left, and the figures of the bucket.
func (b *costBucket) take(requested float64) (ok bool, avail, maximum, rate float64, work time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.avail < requested {
		b.throttled++
		return false, b.avail, b.max, b.rate, 0
	}
	b.avail -= requested
	return true, b.avail, b.max, b.rate, b.work
}

// refund gives back what a query set aside beyond its actual cost and returns
// the bucket's level.
func (b *costBucket) refund(requested, actual float64) (avail, maximum, rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	b.avail = min(b.max, b.avail+requested-actual)
	return b.avail, b.max, b.rate
}

// Service implements sandbox.Fake.
func (s *Fake) Service() string { return Service }

// Routes implements sandbox.Fake.
func (s *Fake) Routes() map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string) {
	return map[string]func(http.ResponseWriter, *http.Request, []byte) (int, string){
		"POST /admin/api/{version}/graphql.json": s.graphQL,
	}
}

// Shopify's cost figures on a standard plan: a 2000-point bucket refilled at
// 100 points a second.
const (
	bucket      = 2000.0
	restoreRate = 100.0
)

// Throttle answers the way Shopify does when the bucket is empty: HTTP 200, a
// THROTTLED error and the cost figures. The query is 100 points short, so a
// client waiting as told waits one second.
func (s *Fake) Throttle(w http.ResponseWriter) int {
	writeJSON(w, http.StatusOK, map[string]any{
		"errors": []any{map[string]any{
			"message":    "Throttled",
			"extensions": map[string]any{"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
		}},
		"extensions": map[string]any{"cost": map[string]any{
			"requestedQueryCost": 112,
			"actualQueryCost":    nil,
			"throttleStatus":     map[string]any{"maximumAvailable": bucket, "currentlyAvailable": 12.0, "restoreRate": restoreRate},
		}},
	})
	return http.StatusOK
}

// Fulfillment is a fulfillment the fake holds.
type Fulfillment struct {
	ID                  string     `json:"id"`
	Status              string     `json:"status"`
	CreatedAt           time.Time  `json:"createdAt"`
	TrackingInfo        []Tracking `json:"trackingInfo"`
	FulfillmentOrderIDs []string   `json:"-"`
	NotifyCustomer      bool       `json:"-"`
	// TrackingUpdates counts fulfillmentTrackingInfoUpdate calls on it.
	TrackingUpdates int `json:"-"`
}

// Tracking is a fulfillment's tracking information.
type Tracking struct {
	Company string `json:"company"`
	Number  string `json:"number"`
	URL     string `json:"url"`
}

type order struct {
	id           int64
	fos          []*fulfillmentOrder
	fulfillments []*Fulfillment
}

type fulfillmentOrder struct {
	id     string
	status string
	lines  []*foLine
}

type foLine struct {
	id               string
	total, remaining int
}

// gid returns a new GraphQL id of kind; s.mu must be held.
func (s *Fake) gid(kind string) string {
	s.lastID++
	return fmt.Sprintf("gid://shopify/%s/%d", kind, s.lastID)
}

// addOrder creates order id with one open fulfillment order of lineItems
// lines of one unit each; s.mu must be held.
func (s *Fake) addOrder(id int64, lineItems int) *order {
	o := &order{id: id}
	fo := &fulfillmentOrder{id: s.gid("FulfillmentOrder"), status: "OPEN"}
	for range max(lineItems, 1) {
		fo.lines = append(fo.lines, &foLine{id: s.gid("FulfillmentOrderLineItem"), total: 1, remaining: 1})
	}
	o.fos = append(o.fos, fo)
	s.orders[id] = o
	return o
}

// AddOrder makes order id exist in the shop, paid and unfulfilled:
// one open fulfillment order with lineItems lines (at least one).
func (s *Fake) AddOrder(id int64, lineItems int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addOrder(id, lineItems)
}

// AutoCreateOrders makes the fake invent any order it is asked about
// and does not know (one line item), so a person trying errand locally can
// send any order id.
func (s *Fake) AutoCreateOrders(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoCreate = on
}

// HoldOrder puts order id's open fulfillment orders on hold, as a
// merchant does while checking an order: Shopify then refuses to fulfill them.
func (s *Fake) HoldOrder(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orders[id]; o != nil {
		for _, fo := range o.fos {
			if fo.status == "OPEN" || fo.status == "IN_PROGRESS" {
				fo.status = "ON_HOLD"
			}
		}
	}
}

// Fulfillments returns the fulfillments of order id, oldest first.
func (s *Fake) Fulfillments(orderID int64) []Fulfillment {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[orderID]
	if o == nil {
		return nil
	}
	out := make([]Fulfillment, 0, len(o.fulfillments))
	for _, f := range o.fulfillments {
		c := *f
		c.TrackingInfo = append([]Tracking(nil), f.TrackingInfo...)
		c.FulfillmentOrderIDs = append([]string(nil), f.FulfillmentOrderIDs...)
		out = append(out, c)
	}
	return out
}

// The fields of the subset served, found in the query text.
var (
	gqlFulfillmentCreate = regexp.MustCompile(`\bfulfillmentCreate\s*\(`)
	gqlTrackingUpdate    = regexp.MustCompile(`\bfulfillmentTrackingInfoUpdate\s*\(`)
	gqlOrder             = regexp.MustCompile(`\border\s*\(`)
	apiVersionPattern    = regexp.MustCompile(`^(20[0-9]{2}-(01|04|07|10)|unstable)$`)
)

func (s *Fake) graphQL(w http.ResponseWriter, r *http.Request, body []byte) (int, string) {
	token := r.Header.Get("X-Shopify-Access-Token")
	if token == "" || !hmac.Equal([]byte(token), []byte(s.accessToken)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
		return http.StatusUnauthorized, "bad access token"
	}
	// Shopify serves a retired version as the oldest supported one; the fake
	// is stricter, so a client building the wrong path finds out.
	version := r.PathValue("version")
	if !apiVersionPattern.MatchString(version) || (s.apiVersion != "" && version != s.apiVersion) {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": "Not Found"})
		return http.StatusNotFound, "API version " + version + " not served (want " + s.apiVersion + ")"
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" || json.Unmarshal(body, &req) != nil || strings.TrimSpace(req.Query) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]any{"query": "Required parameter missing or invalid"}})
		return http.StatusBadRequest, "no query"
	}
	// The order query asks for up to 10 × 25 line items but reads a few; a
	// mutation costs 10 points; what the fake does not serve costs 1.
	requested, actual := 1.0, 1.0
	isOrder := gqlOrder.MatchString(req.Query) && !gqlFulfillmentCreate.MatchString(req.Query) && !gqlTrackingUpdate.MatchString(req.Query)
	switch {
	case isOrder:
		requested, actual = 282, 7
	case gqlFulfillmentCreate.MatchString(req.Query), gqlTrackingUpdate.MatchString(req.Query):
		requested, actual = 10, 10
	}
	ok, avail, maximum, rate, work := s.bucket.take(requested)
	if !ok {
		answer(w, nil, []any{gqlError("Throttled", "THROTTLED")}, figures{requested, -1, maximum, avail, rate})
		return http.StatusOK, fmt.Sprintf("throttled: the bucket has %.0f of the %.0f points the query needs", avail, requested)
	}
	time.Sleep(work)
	data, note, problem := s.run(req.Query, req.Variables)
	avail, maximum, rate = s.bucket.refund(requested, actual)
	f := figures{requested, actual, maximum, avail, rate}
	if problem != "" {
		answer(w, nil, []any{gqlError(problem, "argumentLiteralsIncompatible")}, f)
		return http.StatusOK, problem
	}
	if data == nil {
		answer(w, nil, []any{gqlError("the sandbox serves only order, fulfillmentCreate and fulfillmentTrackingInfoUpdate", "undefinedField")}, f)
		return http.StatusOK, "unsupported query"
	}
	answer(w, data, nil, f)
	return http.StatusOK, note
}

// run runs the query or mutation: its data, a note for the call log, or the
// problem with its input; data nil when the fake does not serve it.
func (s *Fake) run(query string, vars map[string]any) (data map[string]any, note, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case gqlFulfillmentCreate.MatchString(query):
		data, note = s.fulfillmentCreate(vars)
	case gqlTrackingUpdate.MatchString(query):
		data, note = s.trackingInfoUpdate(vars)
	case gqlOrder.MatchString(query):
		data, note, problem = s.orderQuery(vars)
	}
	return data, note, problem
}

// figures are a query's cost figures; actual −1 when it was not run.
type figures struct {
	requested, actual, maximum, available, restoreRate float64
}

func gqlError(msg, code string) map[string]any {
	return map[string]any{"message": msg, "extensions": map[string]any{"code": code}}
}

// answer writes a GraphQL answer with Shopify's cost figures.
func answer(w http.ResponseWriter, data map[string]any, errs []any, f figures) {
	var actual any = f.actual
	if f.actual < 0 {
		actual = nil
	}
	out := map[string]any{
		"extensions": map[string]any{"cost": map[string]any{
			"requestedQueryCost": f.requested,
			"actualQueryCost":    actual,
			"throttleStatus":     map[string]any{"maximumAvailable": f.maximum, "currentlyAvailable": f.available, "restoreRate": f.restoreRate},
		}},
	}
	if data != nil {
		out["data"] = data
	}
	if errs != nil {
		out["errors"] = errs
	}
	writeJSON(w, http.StatusOK, out)
}

// orderQuery answers order(id:), or says what is wrong with the id; s.mu
// must be held.
func (s *Fake) orderQuery(vars map[string]any) (data map[string]any, note, problem string) {
	gid, _ := vars["id"].(string)
	id, ok := parseGID(gid, "Order")
	if !ok {
		return nil, "", fmt.Sprintf("Invalid global id '%s'", gid)
	}
	o := s.orders[id]
	if o == nil && s.autoCreate {
		o = s.addOrder(id, 1)
	}
	if o == nil {
		return map[string]any{"order": nil}, fmt.Sprintf("order %d unknown", id), ""
	}
	fos := []any{}
	for _, fo := range o.fos {
		lines := []any{}
		for _, l := range fo.lines {
			lines = append(lines, map[string]any{"id": l.id, "totalQuantity": l.total, "remainingQuantity": l.remaining})
		}
		fos = append(fos, map[string]any{"id": fo.id, "status": fo.status, "lineItems": map[string]any{"nodes": lines}})
	}
	fs := []any{}
	for _, f := range o.fulfillments {
		fs = append(fs, f)
	}
	return map[string]any{"order": map[string]any{
		"id":                shopify.OrderGID(id),
		"fulfillmentOrders": map[string]any{"nodes": fos},
		"fulfillments":      fs,
	}}, fmt.Sprintf("order %d", id), ""
}

func parseGID(gid, kind string) (int64, bool) {
	rest, ok := strings.CutPrefix(gid, "gid://shopify/"+kind+"/")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// userErrors is a mutation payload that refuses.
func userErrors(mutation string, field []string, msg string) (map[string]any, string) {
	return map[string]any{mutation: map[string]any{
		"fulfillment": nil,
		"userErrors":  []any{map[string]any{"field": field, "message": msg}},
	}}, "userErrors: " + msg
}

// fulfillmentCreate serves the mutation of that name; s.mu must be held.
func (s *Fake) fulfillmentCreate(vars map[string]any) (map[string]any, string) {
	const m = "fulfillmentCreate"
	in, _ := vars["fulfillment"].(map[string]any)
	groups, _ := in["lineItemsByFulfillmentOrder"].([]any)
	if len(groups) == 0 {
		return userErrors(m, []string{"fulfillment", "lineItemsByFulfillmentOrder"}, "Line items by fulfillment order must not be empty.")
	}
	tracking, problem := readTracking(in["trackingInfo"])
	if problem != "" {
		return userErrors(m, []string{"fulfillment", "trackingInfo"}, problem)
	}
	type take struct {
		line *foLine
		qty  int
	}
	var (
		order *order
		fos   []*fulfillmentOrder
		takes []take
	)
	for i, g := range groups {
		field := []string{"fulfillment", "lineItemsByFulfillmentOrder", strconv.Itoa(i)}
		gm, _ := g.(map[string]any)
		foID, _ := gm["fulfillmentOrderId"].(string)
		o, fo := s.findFO(foID)
		switch {
		case fo == nil:
			return userErrors(m, append(field, "fulfillmentOrderId"), "Fulfillment order does not exist.")
		case order != nil && o != order:
			return userErrors(m, field, "All fulfillment orders must belong to the same order.")
		case fo.status != "OPEN" && fo.status != "IN_PROGRESS":
			return userErrors(m, field, fmt.Sprintf("Fulfillment order %s has an unfulfillable status= %s.", foID, strings.ToLower(fo.status)))
		}
		order = o
		fos = append(fos, fo)
		wanted, _ := gm["fulfillmentOrderLineItems"].([]any)
		if len(wanted) == 0 {
			for _, l := range fo.lines {
				if l.remaining > 0 {
					takes = append(takes, take{l, l.remaining})
				}
			}
			continue
		}
		for _, w := range wanted {
			wm, _ := w.(map[string]any)
			lineID, _ := wm["id"].(string)
			qty, _ := wm["quantity"].(float64)
			var line *foLine
			for _, l := range fo.lines {
				if l.id == lineID {
					line = l
				}
			}
			if line == nil || qty < 1 || int(qty) > line.remaining {
				return userErrors(m, append(field, "fulfillmentOrderLineItems"), "Invalid fulfillment order line item quantity requested.")
			}
			takes = append(takes, take{line, int(qty)})
		}
	}
	if len(takes) == 0 {
		return userErrors(m, []string{"fulfillment"}, "Fulfillment orders have nothing left to fulfill.")
	}
	for _, t := range takes {
		t.line.remaining -= t.qty
	}
	f := &Fulfillment{ID: s.gid("Fulfillment"), Status: "SUCCESS", CreatedAt: time.Now().UTC(), NotifyCustomer: in["notifyCustomer"] == true}
	if tracking != nil {
		f.TrackingInfo = []Tracking{*tracking}
	} else {
		f.TrackingInfo = []Tracking{}
	}
	for _, fo := range fos {
		f.FulfillmentOrderIDs = append(f.FulfillmentOrderIDs, fo.id)
		fo.status = "CLOSED"
		for _, l := range fo.lines {
			if l.remaining > 0 {
				fo.status = "IN_PROGRESS"
			}
		}
	}
	order.fulfillments = append(order.fulfillments, f)
	return map[string]any{m: map[string]any{"fulfillment": f, "userErrors": []any{}}},
		fmt.Sprintf("order %d: %s created", order.id, f.ID)
}

// trackingInfoUpdate serves fulfillmentTrackingInfoUpdate; s.mu must be held.
func (s *Fake) trackingInfoUpdate(vars map[string]any) (map[string]any, string) {
	const m = "fulfillmentTrackingInfoUpdate"
	id, _ := vars["fulfillmentId"].(string)
	var f *Fulfillment
	for _, o := range s.orders {
		for _, cand := range o.fulfillments {
			if cand.ID == id {
				f = cand
			}
		}
	}
	if f == nil {
		return userErrors(m, []string{"fulfillmentId"}, "Fulfillment does not exist.")
	}
	if f.Status == "CANCELLED" {
		return userErrors(m, []string{"fulfillmentId"}, "Cannot update the tracking of a cancelled fulfillment.")
	}
	tracking, problem := readTracking(vars["trackingInfoInput"])
	if problem == "" && tracking == nil {
		problem = "Tracking info input must not be empty."
	}
	if problem != "" {
		return userErrors(m, []string{"trackingInfoInput"}, problem)
	}
	f.TrackingInfo = []Tracking{*tracking}
	f.TrackingUpdates++
	if vars["notifyCustomer"] == true {
		f.NotifyCustomer = true
	}
	return map[string]any{m: map[string]any{"fulfillment": f, "userErrors": []any{}}}, f.ID + ": tracking updated"
}

func (s *Fake) findFO(id string) (*order, *fulfillmentOrder) {
	for _, o := range s.orders {
		for _, fo := range o.fos {
			if fo.id == id {
				return o, fo
			}
		}
	}
	return nil, nil
}

// readTracking reads a FulfillmentTrackingInput: nil when absent, or what is
// wrong with it.
func readTracking(v any) (*Tracking, string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, ""
	}
	t := &Tracking{}
	t.Company, _ = m["company"].(string)
	t.Number, _ = m["number"].(string)
	t.URL, _ = m["url"].(string)
	if t.URL != "" {
		if t.Number == "" {
			return nil, "A tracking number must be given with a tracking URL."
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "Tracking URL is not a valid URL."
		}
	}
	return t, ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
