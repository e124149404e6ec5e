-- Version 6: queries sent by clients of the SQL endpoint are logged with origin 'sql'.
-- SQLite cannot alter a CHECK constraint: query_log is rebuilt with the same ids (so
-- AUTOINCREMENT keeps counting), and query_scans, which the drop cascades through, is restored.
CREATE TABLE query_log_v6 (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms                     INTEGER NOT NULL,
    table_name                TEXT NOT NULL,
    layout_id                 TEXT,
    sql                       TEXT NOT NULL,
    fingerprint               TEXT NOT NULL,
    cluster_id                TEXT,
    latency_ms                REAL,
    rows_returned             INTEGER NOT NULL,
    bytes_scanned             INTEGER NOT NULL,
    row_groups_total          INTEGER NOT NULL,
    row_groups_pruned         INTEGER NOT NULL,
    files_total               INTEGER NOT NULL,
    files_pruned              INTEGER NOT NULL,
    rows_pruned_by_page_index INTEGER NOT NULL,
    result_digest             TEXT,
    error                     TEXT,
    origin                    TEXT NOT NULL CHECK (origin IN ('query', 'workload', 'imported', 'sql')),
    workload                  TEXT,
    policy                    TEXT,
    explored                  INTEGER
);
INSERT INTO query_log_v6 (id, ts_ms, table_name, layout_id, sql, fingerprint, cluster_id,
    latency_ms, rows_returned, bytes_scanned, row_groups_total, row_groups_pruned, files_total,
    files_pruned, rows_pruned_by_page_index, result_digest, error, origin, workload, policy,
    explored)
SELECT id, ts_ms, table_name, layout_id, sql, fingerprint, cluster_id, latency_ms,
    rows_returned, bytes_scanned, row_groups_total, row_groups_pruned, files_total, files_pruned,
    rows_pruned_by_page_index, result_digest, error, origin, workload, policy, explored
FROM query_log;
CREATE TEMP TABLE query_scans_v6 AS SELECT * FROM query_scans;
DROP TABLE query_log;
ALTER TABLE query_log_v6 RENAME TO query_log;
DELETE FROM query_scans;
INSERT INTO query_scans SELECT * FROM query_scans_v6;
DROP TABLE query_scans_v6;
CREATE INDEX query_log_table_ts ON query_log (table_name, ts_ms);
CREATE INDEX query_log_fingerprint ON query_log (fingerprint);
CREATE INDEX query_log_table_cluster ON query_log (table_name, cluster_id);
