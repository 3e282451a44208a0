#!/usr/bin/env bash
# The ceiling PostgreSQL itself puts on noop processing (run by
# `scripts/bench queue-sql`): pgbench replays a worker's batch statements
# (queue_sql/batch.sql) from 8 clients on dbsupervisor's own schema and jobs, with
# no worker code at all. If this is below a target, no client work can reach it.
# For comparison, two turns dbsupervisor does not run: the same turn deleting
# finished jobs at once instead of keeping them for retention_s, and a claim by
# row lock alone with one update per job (queue_sql/claim_by_lock.sql). Medians
# of REPS runs of 3 s: jobs per second, and the CPU time the postgres processes
# spent per job (at 60,000 jobs/s, 33 µs per job is both cores, all the time).
#   queue_sql_bench.sh BINARY [JOBS] [REPS]
set -euo pipefail
bin="$1"; n="${2:-400000}"; reps="${3:-3}"
batch=1024  # jobs claimed per turn, as claim_batch in queue_bench.sh
here="$(cd "$(dirname "$0")" && pwd)"
pgbench=/usr/lib/postgresql/15/bin/pgbench
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"
write_jobs_jsonl "$n" "$work/jobs.jsonl"
cat > "$work/c.toml" <<TOML
[databases.main]
url = "$DBSUP_TEST_PG_URL"
password_env = "DBSUP_TEST_PG_PASSWORD"
TOML

one_run() {  # script -> "jobs/s postgres_µs_per_job"
  psql -q "$DBSUP_TEST_PG_URL" -c "SET client_min_messages = warning" \
    -c "DROP TABLE IF EXISTS dbsup_jobs, dbsup_schema, dbsup_queues, dbsup_schedules" >/dev/null
  "$bin" --config "$work/c.toml" init-db >/dev/null
  "$bin" --config "$work/c.toml" enqueue noop --jsonl "$work/jobs.jsonl" >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "VACUUM ANALYZE dbsup_jobs" -c "CHECKPOINT" >/dev/null
  local ticks out jobs
  ticks=$(postgres_cpu_ticks)
  out="$("$pgbench" -n -M prepared -c 8 -j 2 -T 3 -D 'ids={}' -D "batch=$batch" -f "$1" \
    "$DBSUP_TEST_PG_URL" 2>&1)"
  sleep 0.2  # the postmaster reaps the backends, adding their time to its own
  ticks=$(( $(postgres_cpu_ticks) - ticks ))
  jobs=$(awk '/actually processed/ {split($NF, t, "/"); print t[1] * b}' b="$batch" <<<"$out")
  [ "${jobs:-0}" -gt 0 ] || { echo "queue_sql_bench: pgbench failed: $out" >&2; exit 1; }
  # Every turn is counted as a full claim: the queue must outlast the run.
  [ "$(psql -tA "$DBSUP_TEST_PG_URL" \
        -c "SELECT count(*) FROM dbsup_jobs WHERE state = 'available'")" -gt 0 ] ||
    { echo "queue_sql_bench: the $n jobs ran out within 3 s; give more JOBS" >&2; exit 1; }
  echo "$(awk '/^tps/ {printf "%d", $3 * b}' b="$batch" <<<"$out") $(( ticks * 10000 / jobs ))"
}

sed -e "s/^UPDATE dbsup_jobs SET state = 'succeeded'.*/DELETE FROM dbsup_jobs/" \
    -e '/^  last_error = NULL, finished_at = 2/d' "$here/queue_sql/batch.sql" > "$work/delete.sql"
grep -q '^DELETE FROM dbsup_jobs' "$work/delete.sql" ||
  { echo "queue_sql_bench: batch.sql changed; update the DELETE variant's sed" >&2; exit 1; }

row() {  # label script
  local results
  results="$(for _ in $(seq "$reps"); do one_run "$2"; done)"
  printf "%-40s %14s %22s\n" "$1" "$(cut -d' ' -f1 <<<"$results" | median)" \
    "$(cut -d' ' -f2 <<<"$results" | median)"
}
printf "%-40s %14s %22s\n" "statements" "jobs/s" "postgres CPU µs/job"
row "batch.sql (as dbsupervisor runs it)" "$here/queue_sql/batch.sql"
row "completion by DELETE instead" "$work/delete.sql"
row "claim by row lock, one update per job" "$here/queue_sql/claim_by_lock.sql"
