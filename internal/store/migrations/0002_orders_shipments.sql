-- Paid Shopify orders, saved from the orders/paid webhook. id is Shopify's
-- numeric order id (also the platformOrderId errand sends to fulfillment).
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL DEFAULT '',
    email       TEXT    NOT NULL DEFAULT '',
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Webhook deliveries already handled (X-Shopify-Event-Id), so a repeat
-- delivery queues nothing new.
CREATE TABLE webhook_events (
    source      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
);

-- Shipments reported by the fulfillment platform; sync_state tells whether
-- the tracking number reached Shopify.
CREATE TABLE shipments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL,
    tracking_number TEXT    NOT NULL,
    carrier         TEXT    NOT NULL DEFAULT '',
    tracking_url    TEXT    NOT NULL DEFAULT '',
    shipped_at      TEXT    NOT NULL DEFAULT '',
    sync_state      TEXT    NOT NULL DEFAULT 'pending',
    synced_at       INTEGER NOT NULL DEFAULT 0,
    -- the order:sync_tracking job that syncs it now, and how many times the
    -- reconciler had to queue it again
    job_id          TEXT    NOT NULL DEFAULT '',
    requeues        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    UNIQUE (order_id, tracking_number)
);
CREATE INDEX shipments_pending ON shipments (sync_state, created_at);
