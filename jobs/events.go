package jobs

import (
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// The events errand's handlers raise (internal/web), each with its entity
// and data. [events."<event>"] in config.toml decides which job types each
// queues; a job type says how its payload is built from an event in its
// Sources (job.From), beside its code.

// UserRegistered: POST /api/users saved a new user.
type UserRegistered struct{ User store.User }

// UserUpdated: PATCH /api/users/{id} changed a user (any field).
type UserUpdated struct{ Before, After store.User }

// OrderPaid: Shopify's orders/paid webhook saved a paid order.
type OrderPaid struct{ Order store.Order }

// ShipmentShipped: the fulfillment platform's tracking callback saved a
// shipment.
type ShipmentShipped struct{ Shipment store.Shipment }

// Event implements job.Event.
func (UserRegistered) Event() string  { return "user.registered" }
func (UserUpdated) Event() string     { return "user.updated" }
func (OrderPaid) Event() string       { return "order.paid" }
func (ShipmentShipped) Event() string { return "shipment.shipped" }

// Entity implements job.Event.
func (e UserRegistered) Entity() string  { return job.UserEntity(e.User.ID) }
func (e UserUpdated) Entity() string     { return job.UserEntity(e.After.ID) }
func (e OrderPaid) Entity() string       { return job.OrderEntity(e.Order.ID) }
func (e ShipmentShipped) Entity() string { return job.OrderEntity(e.Shipment.OrderID) }
