-- Version 3: migration jobs (queue, leases with fencing tokens, resumable progress) and the
-- measured cost of every rewrite.
CREATE TABLE migration_jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name        TEXT NOT NULL,
    source_layout     TEXT NOT NULL,
    target_layout     TEXT NOT NULL,
    spec_json         TEXT NOT NULL,
    plan_json         TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('full', 'incremental')),
    activate          INTEGER NOT NULL DEFAULT 1,
    status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempt           INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_ms  INTEGER,
    fencing_token     INTEGER NOT NULL DEFAULT 0,
    units_total       INTEGER NOT NULL DEFAULT 0,
    units_done        INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    retry_after_ms    INTEGER,
    created_at_ms     INTEGER NOT NULL,
    started_at_ms     INTEGER,
    finished_at_ms    INTEGER,
    bytes_read        INTEGER NOT NULL DEFAULT 0,
    bytes_written     INTEGER NOT NULL DEFAULT 0,
    rows_written      INTEGER NOT NULL DEFAULT 0,
    files_written     INTEGER NOT NULL DEFAULT 0,
    duration_ms       INTEGER NOT NULL DEFAULT 0,
    peak_memory_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (table_name, target_layout)
);
CREATE INDEX migration_jobs_status ON migration_jobs (status, retry_after_ms);
