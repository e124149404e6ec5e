-- Version 9: filter pushdown chosen per query shape and layout (`adaptive_pushdown`).
-- `query_log.pushdown` is the choice a query ran with (NULL: the session's fixed setting);
-- `pushdown_stats` sums the latencies of each choice per (table, fingerprint, layout), and
-- keeps the slowest, which the choice's score leaves out (a cold first run).
ALTER TABLE query_log ADD COLUMN pushdown INTEGER;

CREATE TABLE pushdown_stats (
    table_name     TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    layout_id      TEXT NOT NULL,
    pushdown       INTEGER NOT NULL CHECK (pushdown IN (0, 1)),
    runs           INTEGER NOT NULL,
    sum_latency_ms REAL NOT NULL,
    max_latency_ms REAL NOT NULL,
    PRIMARY KEY (table_name, fingerprint, layout_id, pushdown)
);
