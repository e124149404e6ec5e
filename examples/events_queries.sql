-- Concrete queries over `dbopt generate`'s events table, separated by semicolons.
--
--   dbopt run-workload --table-name events --workload-file examples/events_queries.sql
--   dbopt run-workload --table-name events --workload-file examples/events_queries.sql --sample --num-queries 50 --seed 3
--   dbopt import-queries --table-name events --file examples/events_queries.sql

SELECT event_type, COUNT(*) AS events
FROM events
WHERE event_date >= DATE '2025-03-01' AND event_date < DATE '2025-03-08'
GROUP BY event_type
ORDER BY events DESC;

SELECT country, SUM(amount) AS revenue
FROM events
WHERE event_type = 'purchase' AND event_date >= DATE '2025-06-01' AND event_date < DATE '2025-07-01'
GROUP BY country
ORDER BY revenue DESC;

SELECT event_date, COUNT(*) AS events
FROM events
WHERE customer_id = 1
GROUP BY event_date
ORDER BY event_date;

SELECT device, COUNT(DISTINCT user_id) AS users
FROM events
WHERE event_ts >= TIMESTAMP '2025-09-15 08:00:00' AND event_ts < TIMESTAMP '2025-09-15 12:00:00'
GROUP BY device;

SELECT c.segment, COUNT(*) AS events, SUM(e.amount) AS revenue
FROM events e JOIN customers c USING (customer_id)
WHERE e.event_date >= DATE '2025-11-01' AND e.event_date < DATE '2025-11-15'
GROUP BY c.segment
ORDER BY revenue DESC;
