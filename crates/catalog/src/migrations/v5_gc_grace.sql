-- Version 5: when a layout left service (became retired or failed), so gc can keep its files
-- for a grace period while queries that resolved it before still read them.
ALTER TABLE layouts ADD COLUMN retired_at_ms INTEGER;
