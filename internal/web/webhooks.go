package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/fulfillment"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/shopify"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// shopifyTopicOrdersPaid is the only X-Shopify-Topic the orders-paid URL takes.
const shopifyTopicOrdersPaid = "orders/paid"

// shopifyOrder is the part of the orders/paid payload errand reads; the whole
// body is saved as it came.
type shopifyOrder struct {
	ID    json.Number `json:"id"`
	Name  string      `json:"name"`
	Email string      `json:"email"`
}

// handleOrdersPaid takes Shopify's orders/paid webhook: verify, save the
// order, queue the push to the fulfillment platform. Repeats answer 200 and
// queue nothing.
func (s *Server) handleOrdersPaid() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, p := readBody(w, r)
		if p != nil {
			p.send(w)
			return
		}
		if shopify.VerifyWebhook(s.Config.Shopify.WebhookSecret, body, r.Header.Get("X-Shopify-Hmac-Sha256")) != nil {
			// One answer for every failure: a caller guessing learns nothing.
			(&problem{Status: http.StatusUnauthorized, Error: "invalid or missing X-Shopify-Hmac-Sha256"}).send(w)
			return
		}
		// Every topic of a shop is signed with the same secret, so a
		// signature alone does not make a refund or a new unpaid order a
		// paid one. A wrong topic here is a misconfigured subscription:
		// 400 shows it in Shopify's delivery log, and nothing is stored.
		if topic := strings.TrimSpace(r.Header.Get("X-Shopify-Topic")); topic != shopifyTopicOrdersPaid {
			why := "X-Shopify-Topic is missing; this URL takes only " + shopifyTopicOrdersPaid
			if topic != "" {
				if len(topic) > 64 {
					topic = topic[:64] + "…"
				}
				why = "X-Shopify-Topic is " + strconv.Quote(topic) + "; this URL takes only " + shopifyTopicOrdersPaid
			}
			(&problem{Status: http.StatusBadRequest, Error: why}).send(w)
			return
		}
		if p := notObject(body); p != nil {
			p.send(w)
			return
		}
		var o shopifyOrder
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&o); err != nil {
			(&problem{Status: http.StatusBadRequest, Error: "malformed JSON: " + err.Error()}).send(w)
			return
		}
		id, err := strconv.ParseInt(o.ID.String(), 10, 64)
		if err != nil || id <= 0 {
			(&problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: map[string]string{"id": "must be the order's numeric id"}}).send(w)
			return
		}
		order := &store.Order{ID: id, Name: o.Name, Email: o.Email, Payload: string(body)}
		jobsOut, err := s.Events.Raise(jobs.OrderPaid{Order: *order})
		if err != nil {
			s.Log.Error("orders/paid: prepare jobs", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		err = s.Store.SaveOrder(r.Context(), r.Header.Get("X-Shopify-Event-Id"), order, jobsOut)
		switch {
		case errors.Is(err, store.ErrDuplicate):
			writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate", "order_id": id})
			return
		case err != nil:
			s.Log.Error("orders/paid: save order", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		s.Relay.Kick()
		// job_id is the first job's: the push to fulfillment by default.
		answer := map[string]any{"status": "queued", "order_id": id}
		if len(jobsOut) > 0 {
			answer["job_id"] = jobsOut[0].ID
		}
		s.Log.Info("order paid", "order_id", id, "job_id", answer["job_id"], "jobs", len(jobsOut))
		writeJSON(w, http.StatusOK, answer)
	})
}

// syncTracking is the job type the reconciler looks for on a shipment.
var syncTracking = jobs.SyncTracking{}.Kind()

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// trackingCallback is the fulfillment platform's shipped callback.
type trackingCallback struct {
	OrderNo        string `json:"order_no"`
	TrackingNumber string `json:"tracking_number"`
	Carrier        string `json:"carrier"`
	TrackingURL    string `json:"tracking_url"`
	ShippedAt      string `json:"shipped_at"`
}

// Valid implements validator.
func (c *trackingCallback) Valid() map[string]string {
	f := map[string]string{}
	if id, err := strconv.ParseInt(strings.TrimSpace(c.OrderNo), 10, 64); err != nil || id <= 0 {
		f["order_no"] = "must be the platformOrderId errand sent (the Shopify order id)"
	}
	c.TrackingNumber = strings.TrimSpace(c.TrackingNumber)
	if c.TrackingNumber == "" || len(c.TrackingNumber) > 100 {
		f["tracking_number"] = "must not be empty"
	}
	if len(c.Carrier) > 100 {
		f["carrier"] = "must be at most 100 characters"
	}
	if c.TrackingURL != "" && !strings.HasPrefix(c.TrackingURL, "http://") && !strings.HasPrefix(c.TrackingURL, "https://") {
		f["tracking_url"] = "must be an http(s) URL"
	}
	if c.ShippedAt != "" {
		if _, err := time.Parse(time.RFC3339, c.ShippedAt); err != nil {
			f["shipped_at"] = "must be an RFC 3339 time"
		}
	}
	return f
}

// handleTrackingCallback takes the fulfillment platform's shipped callback:
// verify, save the shipment as pending, queue the sync to Shopify. A repeat of
// the same order and tracking number answers 200 and queues nothing.
func (s *Server) handleTrackingCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, p := readBody(w, r)
		if p != nil {
			p.send(w)
			return
		}
		if err := fulfillment.VerifyCallback(s.Config.Fulfill.CallbackSecret, r.Header.Get("X-Timestamp"), body, r.Header.Get("X-Signature"), time.Now()); err != nil {
			(&problem{Status: http.StatusUnauthorized, Error: err.Error()}).send(w)
			return
		}
		if p := notObject(body); p != nil {
			p.send(w)
			return
		}
		var c trackingCallback
		if err := json.Unmarshal(body, &c); err != nil {
			(&problem{Status: http.StatusBadRequest, Error: "malformed JSON: " + err.Error()}).send(w)
			return
		}
		if f := c.Valid(); len(f) > 0 {
			(&problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: f}).send(w)
			return
		}
		orderID, _ := strconv.ParseInt(strings.TrimSpace(c.OrderNo), 10, 64)
		sh := &store.Shipment{OrderID: orderID, TrackingNumber: c.TrackingNumber, Carrier: c.Carrier, TrackingURL: c.TrackingURL, ShippedAt: c.ShippedAt}
		var jobID string
		err := s.Store.SaveShipment(r.Context(), sh, func(sh *store.Shipment) ([]job.Envelope, error) {
			out, err := s.Events.Raise(jobs.ShipmentShipped{Shipment: *sh})
			// The shipment remembers its first job as its sync job (the
			// reconciler checks it is alive): the sync goes first.
			slices.SortStableFunc(out, func(a, b job.Envelope) int {
				return cmp.Compare(btoi(a.Type != syncTracking), btoi(b.Type != syncTracking))
			})
			if len(out) > 0 {
				jobID = out[0].ID
			}
			return out, err
		})
		switch {
		case errors.Is(err, store.ErrDuplicate):
			writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate"})
			return
		case err != nil:
			s.Log.Error("tracking callback: save shipment", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		s.Relay.Kick()
		s.Log.Info("shipment reported", "order_id", orderID, "shipment_id", sh.ID, "job_id", jobID)
		answer := map[string]any{"status": "queued", "shipment_id": sh.ID}
		if jobID != "" {
			answer["job_id"] = jobID
		}
		writeJSON(w, http.StatusOK, answer)
	})
}
