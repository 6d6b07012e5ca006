-- PostgreSQL's copy of ../0004_api_job_owners.sql. No PostgreSQL database
-- predates this table, so there are no older answers to read owners from.

-- Which API token queued each job of POST /api/jobs (a hash naming the token,
-- never the token), so GET /api/jobs/{id} answers only that token.
CREATE TABLE api_jobs (
    job_id      TEXT    PRIMARY KEY,
    token_hash  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
