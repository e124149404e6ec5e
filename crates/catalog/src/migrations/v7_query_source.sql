-- Version 7: where an imported query ran (Trino, ClickHouse, ...) with the source engine's
-- own measurements, so a log imported twice is not logged twice and analysis can use the
-- engine's figures. NULL for queries dbopt ran itself.
ALTER TABLE query_log ADD COLUMN source_engine TEXT;
ALTER TABLE query_log ADD COLUMN source_query_id TEXT;
ALTER TABLE query_log ADD COLUMN source_json TEXT;
CREATE INDEX query_log_source ON query_log (source_engine, source_query_id)
    WHERE source_query_id IS NOT NULL;
