-- Which API token queued each job of POST /api/jobs (a hash naming the token,
-- never the token), so GET /api/jobs/{id} answers only that token. Kept as
-- long as job_callbacks: the job stays visible in Redis long after it has
-- left the outbox (scheduled up to 30 days, failed ones for 90 days).
CREATE TABLE api_jobs (
    job_id      TEXT    PRIMARY KEY,
    token_hash  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Jobs queued before this table existed are known only through the answers
-- kept for their Idempotency-Key; the rest answer no token.
INSERT OR IGNORE INTO api_jobs (job_id, token_hash, created_at)
    SELECT json_extract(response, '$.id'), token_hash, created_at FROM idempotency
    WHERE status = 202 AND json_valid(response) AND json_extract(response, '$.id') IS NOT NULL;
