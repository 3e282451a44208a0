-- One turn of a worker's batch on PostgreSQL, as BatchTransaction::flush sends
-- it: complete the jobs claimed last turn, claim the next :batch, one commit.
-- Mirrors Queue::claim_in and BatchTransaction::complete_pending; keep them in step.
BEGIN;
SELECT set_config('idle_in_transaction_session_timeout', '60000', true),
       set_config('plan_cache_mode', 'force_custom_plan', true);
UPDATE dbsup_jobs SET state = 'succeeded', locked_by = NULL, locked_until = NULL,
  last_error = NULL, finished_at = 2, updated_at = 2
  WHERE state = 'running' AND locked_by = :client_id::text AND id = ANY(:ids::uuid[]);
WITH claimed AS (
  UPDATE dbsup_jobs SET state = 'running', attempts = attempts + 1, locked_by = :client_id,
    locked_until = 9000000000000, updated_at = 1
  WHERE id = ANY(ARRAY(SELECT id FROM dbsup_jobs WHERE queue = 'default' AND state = 'available'
               AND run_at <= 9000000000000 ORDER BY priority, run_at LIMIT :batch::int
               FOR UPDATE SKIP LOCKED))
  RETURNING id, queue, task, payload, state, priority, run_at, attempts, max_attempts,
            locked_by, locked_until, last_error, created_at, finished_at)
SELECT array_agg(id)::text AS ids FROM claimed \gset
COMMIT;
