-- Job history: every job queued (with the entity it is for), each attempt's
-- outcome, and the durable failed list.

-- One row per job, written in the transaction that queues it.
CREATE TABLE history_jobs (
    id           TEXT    PRIMARY KEY,
    entity       TEXT    NOT NULL DEFAULT '',
    type         TEXT    NOT NULL,
    queue        TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    queued_at_ms INTEGER NOT NULL,
    payload      TEXT    NOT NULL, -- redacted
    done_at_ms   INTEGER            -- when an attempt completed it: a success is no attempts row
);
CREATE INDEX history_jobs_entity ON history_jobs (entity, queued_at_ms) WHERE entity <> '';
CREATE INDEX history_jobs_queued ON history_jobs (queued_at_ms);

-- One row per failed attempt, written by the workers in batches (a success
-- is history_jobs.done_at_ms: the cheapest write, at tens of thousands of
-- jobs a second). A job retried from the failed list numbers its attempts
-- from 1 again.
CREATE TABLE history_attempts (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT    NOT NULL,
    number  INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    outcome TEXT    NOT NULL, -- done | retry | failed
    error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX history_attempts_job ON history_attempts (job_id, seq);
CREATE INDEX history_attempts_at ON history_attempts (at_ms);

-- The failed list: kept until `errand failed prune`, forget, flush or retry.
CREATE TABLE failed_jobs (
    id            TEXT    PRIMARY KEY,
    type          TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    entity        TEXT    NOT NULL DEFAULT '',
    payload       TEXT    NOT NULL, -- redacted, to show
    run_payload   BLOB    NOT NULL, -- as queued, to queue it again
    attempts      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    error         TEXT    NOT NULL,
    history       TEXT    NOT NULL, -- every attempt, JSON [{"at","error"}]
    queued_at_ms  INTEGER NOT NULL,
    failed_at_ms  INTEGER NOT NULL,
    callback      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX failed_jobs_failed ON failed_jobs (failed_at_ms);
