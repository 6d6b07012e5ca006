-- PostgreSQL's copy of ../0003_job_api.sql.

-- POST /api/jobs: answers kept for Idempotency-Key (24 h), so a client
-- retrying a request gets the first answer instead of a second job.
CREATE TABLE idempotency (
    token_hash  TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    body_hash   TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (token_hash, key)
);

-- Where to report a job's outcome. The token lives here, never in a queue.
CREATE TABLE job_callbacks (
    job_id      TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

ALTER TABLE outbox ADD COLUMN callback BOOLEAN NOT NULL DEFAULT false;
