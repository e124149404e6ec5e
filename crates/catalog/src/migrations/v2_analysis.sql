-- Version 2: workload analysis and proposals.

-- Column statistics of one layout (Parquet footers plus a sample), cached as JSON.
CREATE TABLE column_stats (
    table_name     TEXT NOT NULL,
    layout_id      TEXT NOT NULL,
    computed_at_ms INTEGER NOT NULL,
    sample_rows    INTEGER NOT NULL,
    stats_json     TEXT NOT NULL,
    PRIMARY KEY (table_name, layout_id)
);

-- One row per ranked candidate of one `dbopt propose` run, with predicted figures and
-- nullable measured figures filled in once the layout is built and used.
CREATE TABLE proposals (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id              TEXT NOT NULL,
    table_name          TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    rank                INTEGER NOT NULL,
    source_layout       TEXT NOT NULL,
    target_layout       TEXT NOT NULL,
    spec_json           TEXT NOT NULL,
    description         TEXT NOT NULL,
    is_current          INTEGER NOT NULL CHECK (is_current IN (0, 1)),
    recommended         INTEGER NOT NULL CHECK (recommended IN (0, 1)),
    queries             INTEGER NOT NULL,
    current_bytes       REAL NOT NULL,
    predicted_bytes     REAL NOT NULL,
    predicted_reduction REAL NOT NULL,
    predicted_files     REAL NOT NULL,
    predicted_row_groups REAL NOT NULL,
    predicted_cost      REAL NOT NULL,
    rewrite_read_bytes  INTEGER NOT NULL,
    rewrite_write_bytes INTEGER NOT NULL,
    payback_runs        REAL,
    reasons_json        TEXT NOT NULL,
    detail_json         TEXT NOT NULL,
    measured_bytes      REAL,
    measured_reduction  REAL,
    measured_latency_ms REAL,
    measured_at_ms      INTEGER
);
CREATE INDEX proposals_table_run ON proposals (table_name, created_at_ms, run_id);
CREATE INDEX proposals_target ON proposals (table_name, target_layout);
