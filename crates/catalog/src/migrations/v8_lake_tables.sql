-- Version 8: tables that stay in a lakehouse format (Delta Lake) and are read through the
-- table's own log. A managed table has no row here. `initial_files` lists, in the initial
-- layout's manifest order, the log paths of the files that layout was read from, so a rollback
-- to it can re-add exactly those files.
CREATE TABLE lake_tables (
    table_name    TEXT PRIMARY KEY NOT NULL REFERENCES tables (name) ON DELETE CASCADE,
    format        TEXT NOT NULL,
    location      TEXT NOT NULL,
    read_version  INTEGER NOT NULL,
    schema_string TEXT NOT NULL,
    initial_files TEXT NOT NULL
);
