package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/internal/fulfillment/fulfillmenttest"
	"github.com/errandhq/errand/internal/sandbox"
	"github.com/errandhq/errand/internal/shopify/shopifytest"
	"github.com/errandhq/errand/internal/store"
	"github.com/errandhq/errand/jobs"
)

// saveOrder saves a paid order as the orders/paid webhook does.
func (e *env) saveOrder(id int64) {
	e.t.Helper()
	body, _ := shopifytest.OrderPaid(e.cfg.Shopify, id, fmt.Sprintf("evt-%d", id))
	if err := e.store.SaveOrder(context.Background(), "", &store.Order{ID: id, Name: "#1001", Email: "ada@example.com", Payload: string(body)}, nil); err != nil {
		e.t.Fatal(err)
	}
}

// The order is read from the database and pushed to the gateway once: a
// second push (a retry after a lost answer) is recognised, not shipped twice.
func TestPushFulfillmentPushesTheOrderOnce(t *testing.T) {
	e := newEnv(t)
	const id = 820982911946154508
	e.saveOrder(id)
	for range 2 {
		if err := e.run(jobs.PushFulfillment{OrderID: id}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.fakes.Fulfillment.Orders()
	if len(got) != 1 || got[0]["platformOrderId"] != fmt.Sprint(id) {
		t.Fatalf("orders at the gateway: %v", got)
	}
	if !strings.Contains(e.log.String(), "order was already at the fulfillment platform") {
		t.Errorf("the second push was not recognised:\n%s", e.log)
	}
}

// An order errand never saved cannot be pushed by retrying; a gateway
// answering 5xx can.
func TestPushFulfillmentFailureClasses(t *testing.T) {
	e := newEnv(t)
	wantClass(t, e.run(jobs.PushFulfillment{OrderID: 404}), errand.Permanent, "order 404 is not in the database")
	e.saveOrder(1001)
	e.fakes.AddFault(sandbox.Fault{Service: fulfillmenttest.Service, Status: 503, Count: 1})
	wantClass(t, e.run(jobs.PushFulfillment{OrderID: 1001}), errand.Transient)
	if got := e.fakes.Fulfillment.Orders(); len(got) != 0 {
		t.Fatalf("orders at the gateway: %v", got)
	}
}
