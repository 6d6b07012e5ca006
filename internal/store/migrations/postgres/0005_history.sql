-- PostgreSQL's copy of ../0005_history.sql.

CREATE TABLE history_jobs (
    id           TEXT    PRIMARY KEY,
    entity       TEXT    NOT NULL DEFAULT '',
    type         TEXT    NOT NULL,
    queue        TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    queued_at_ms BIGINT  NOT NULL,
    payload      TEXT    NOT NULL, -- redacted
    done_at_ms   BIGINT             -- when an attempt completed it: a success is no attempts row
);
CREATE INDEX history_jobs_entity ON history_jobs (entity, queued_at_ms) WHERE entity <> '';
CREATE INDEX history_jobs_queued ON history_jobs (queued_at_ms);

CREATE TABLE history_attempts (
    seq     BIGSERIAL PRIMARY KEY,
    job_id  TEXT    NOT NULL,
    number  INTEGER NOT NULL,
    at_ms   BIGINT  NOT NULL,
    outcome TEXT    NOT NULL,
    error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX history_attempts_job ON history_attempts (job_id, seq);
CREATE INDEX history_attempts_at ON history_attempts (at_ms);

CREATE TABLE failed_jobs (
    id            TEXT    PRIMARY KEY,
    type          TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    entity        TEXT    NOT NULL DEFAULT '',
    payload       TEXT    NOT NULL,
    run_payload   BYTEA   NOT NULL,
    attempts      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    error         TEXT    NOT NULL,
    history       TEXT    NOT NULL,
    queued_at_ms  BIGINT  NOT NULL,
    failed_at_ms  BIGINT  NOT NULL,
    callback      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX failed_jobs_failed ON failed_jobs (failed_at_ms);
