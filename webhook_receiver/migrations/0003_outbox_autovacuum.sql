-- The outbox is a queue: every notification is inserted, updated once or a few times
-- (attempts) and then only read. After a storm of tens of thousands of notifications the
-- dead versions left by those updates sit in the partial "queued" indexes that every
-- delivery query walks from the oldest id, and with PostgreSQL's default thresholds
-- (a vacuum after 20 % of the table changed) they stay there for hours on a big table:
-- measured with bench/receiver_bench.sh, 1,000 alerts/s right after a storm had their first
-- delivery attempt 8-16 s late instead of ~0.1 s, until a VACUUM. Vacuum it after every
-- 2,000 changed rows whatever its size, without throttling (the work per vacuum is small),
-- and keep its statistics fresh. autovacuum_naptime (a server setting, 1 min by default)
-- bounds how soon that happens: docs/RECEIVER.md recommends 10 s for a busy receiver.
ALTER TABLE notification_outbox SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 2000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 10000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE notification_destinations SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0
);
