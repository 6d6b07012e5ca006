// Package sharedlimit keeps errand's own shared limits of the services it calls
// in Redis: a token bucket and a hold per service, and Shopify's cost
// bucket. Not asynq's layout (that is its parent, internal/rdb), but its
// keys and scripts are Redis layout all the same, so they live under
// internal/rdb, each script embedded from lua/ beside its Go wrapper.
package sharedlimit
