-- Not what dbsupervisor does: the cheapest turn a one-table queue could have,
-- for comparison with batch.sql. Jobs are claimed by row lock alone (no
-- 'running' state, no lease, no owner: nothing a supervisor could release or
-- rescue, and no attempt counted if the worker dies), and each job's only
-- update is its completion, in the same transaction as the claim.
BEGIN;
SELECT COALESCE(array_agg(id), '{}')::text AS ids FROM (
  SELECT id FROM dbsup_jobs WHERE queue = 'default' AND state = 'available'
    AND run_at <= 9000000000000 ORDER BY priority, run_at LIMIT :batch::int
    FOR UPDATE SKIP LOCKED) claimed \gset
UPDATE dbsup_jobs SET state = 'succeeded', attempts = attempts + 1, last_error = NULL,
  finished_at = 2, updated_at = 2
  WHERE id = ANY(:ids::uuid[]);
COMMIT;
