-- Version 4: the learning loop (routing, evaluation, canary, promote/rollback, autopilot).

-- How each query's layout was chosen: the routing policy (NULL when the layout was forced or
-- the active layout was used without routing) and whether the choice explored.
ALTER TABLE query_log ADD COLUMN policy TEXT;
ALTER TABLE query_log ADD COLUMN explored INTEGER;
CREATE INDEX query_log_table_cluster ON query_log (table_name, cluster_id);

-- Running sums per (table, cluster, layout) of every measured query, kept in the same
-- transaction as the query's log row, so routing reads O(layouts) rows, not the log.
CREATE TABLE route_stats (
    table_name        TEXT NOT NULL,
    cluster_id        TEXT NOT NULL,
    layout_id         TEXT NOT NULL,
    n                 INTEGER NOT NULL,
    sum_latency_ms    REAL NOT NULL,
    sum_sq_latency_ms REAL NOT NULL,
    sum_bytes         REAL NOT NULL,
    sum_sq_bytes      REAL NOT NULL,
    explored          INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (table_name, cluster_id, layout_id)
);

-- Every change of a table's active layout, with who did it and why (rollback reads it).
CREATE TABLE activations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name  TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    from_layout TEXT NOT NULL,
    to_layout   TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('activate', 'publish', 'promote', 'rollback')),
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX activations_table ON activations (table_name, id);

-- Canary replays: the hottest logged shapes run on the baseline and on a candidate.
CREATE TABLE canaries (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name           TEXT NOT NULL,
    layout_id            TEXT NOT NULL,
    baseline_layout      TEXT NOT NULL,
    run_at_ms            INTEGER NOT NULL,
    queries              INTEGER NOT NULL,
    mismatches           INTEGER NOT NULL,
    baseline_bytes       REAL NOT NULL,
    candidate_bytes      REAL NOT NULL,
    reduction            REAL NOT NULL,
    baseline_latency_ms  REAL NOT NULL,
    candidate_latency_ms REAL NOT NULL,
    verdict              TEXT NOT NULL CHECK (verdict IN ('promote', 'hold', 'reject')),
    reason               TEXT NOT NULL,
    detail_json          TEXT NOT NULL
);
CREATE INDEX canaries_layout ON canaries (table_name, layout_id, id);

-- Rolling-window evaluations per layout (cluster_id '*' = all clusters of the window).
CREATE TABLE layout_evals (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name        TEXT NOT NULL,
    layout_id         TEXT NOT NULL,
    cluster_id        TEXT NOT NULL,
    evaluated_at_ms   INTEGER NOT NULL,
    window_start_ms   INTEGER NOT NULL,
    window_end_ms     INTEGER NOT NULL,
    baseline_layout   TEXT NOT NULL,
    objective         TEXT NOT NULL,
    queries           INTEGER NOT NULL,
    avg_latency_ms    REAL NOT NULL,
    p50_latency_ms    REAL NOT NULL,
    p95_latency_ms    REAL NOT NULL,
    p99_latency_ms    REAL NOT NULL,
    avg_bytes_scanned REAL NOT NULL,
    avg_rows_returned REAL NOT NULL,
    improvement       REAL,
    reward            REAL,
    regressed         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX layout_evals_layout ON layout_evals (table_name, layout_id, cluster_id, id);

-- What autopilot decided at each step of each pass, and why.
CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name  TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    pass_id     TEXT NOT NULL,
    step        TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX decisions_table ON decisions (table_name, id);
