-- a query log exported from another engine
SELECT count(*) FROM t WHERE id = 3;
SELECT name, sum(amount) FROM t WHERE day BETWEEN '2025-01-01' AND '2025-02-01' GROUP BY name;
/* block; comment */ SELECT 'it''s;' AS s, "id" FROM t ORDER BY id LIMIT 5;
INSERT INTO t VALUES (1);
WITH x AS (SELECT id FROM t) SELECT * FROM x;
