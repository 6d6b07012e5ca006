-- Users who registered through POST /api/users. The password is only ever
-- stored as a bcrypt hash.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    first_name    TEXT    NOT NULL,
    last_name     TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    sales_rep     TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Jobs written in the same transaction as the change that caused them, and
-- moved to Redis by the relay: a rolled-back change queues nothing, and a
-- Redis outage loses nothing.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    queue          TEXT    NOT NULL,
    payload        BLOB    NOT NULL,
    due_at_ms      INTEGER NOT NULL,
    queued_at_ms   INTEGER NOT NULL,
    claimed_until  INTEGER NOT NULL DEFAULT 0,
    tries          INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_claim ON outbox (claimed_until, seq);
