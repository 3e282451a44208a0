#!/usr/bin/env bash
# Does pruning a big backlog of finished jobs hold up claims? (run by
# `scripts/bench prune`, which builds Release and starts a throwaway durable
# PostgreSQL first). For each backend: ROWS succeeded jobs two days old are
# put in the jobs table, then `--workers 8` starts with retention_s = 3600, so
# its keeper prunes them all (1,000 rows per transaction, from 10 s after
# start); meanwhile jobs are enqueued one at a time, 20 ms apart
# (pickup_enqueuer), and each records when it started. Reported: pickup
# latency (enqueue to start) of the jobs enqueued before the pruning began and
# of those enqueued while it ran, p50/p99/max in ms, and how long it ran.
# BACKENDS narrows the runs.
#   prune_bench.sh BINARY ENQUEUER [ROWS]
set -euo pipefail
bin="$1"; enqueuer="$2"; rows="${3:-1000000}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"

old_rows_sql() {  # backend -> the INSERT of $rows succeeded jobs two days old
  local old="(CAST($(now_us_sql "$1") / 1000 AS BIGINT) - 172800000)"
  if [ "$1" = sqlite ]; then
    echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
          INSERT INTO dbsup_jobs (id, queue, task, payload, state, priority, run_at, attempts,
            max_attempts, created_at, updated_at, finished_at)
          SELECT printf('%08x-0000-7000-8000-%012x', i, i), 'default', 'noop', '{}', 'succeeded',
            0, $old, 1, 5, $old, $old, $old FROM n"
  else
    echo "INSERT INTO dbsup_jobs (id, queue, task, payload, state, priority, run_at, attempts,
            max_attempts, created_at, updated_at, finished_at)
          SELECT gen_random_uuid(), 'default', 'noop', '{}', 'succeeded', 0, $old, 1, 5, $old,
            $old, $old FROM generate_series(1, $rows)"
  fi
}

# 1 while an old job is left (cheap: one index probe).
left() { bench_sql "$1" "SELECT COUNT(*) FROM (SELECT 1 FROM dbsup_jobs WHERE state = 'succeeded' AND task = 'noop' LIMIT 1) t"; }
now_us() { bench_sql "$1" "SELECT $(now_us_sql "$1")"; }

percentiles() {  # numbers on stdin -> "p50 p99 max (n)"
  sort -n | awk '{a[NR]=$1} END {
    n = NR; if (n == 0) { print "- - - (0)"; exit }
    printf "%.2f %.2f %.2f (%d)", a[int(n*0.50+0.5)], a[int(n*0.99+0.5)], a[n], n }'
}

printf "%-11s %-32s %-32s %s\n" backend "before pruning: p50 p99 max ms" \
  "while pruning: p50 p99 max ms" "pruning took"
for backend in ${BACKENDS:-postgresql sqlite}; do
  db="$(fresh_database "$backend")"
  cat > "$work/c.toml" <<TOML
[supervisor]
stats_file = "$work/stats.json"
[databases.main]
$db
[queue]
retention_s = 3600
[tasks.mark]
sql = "INSERT INTO bench_pickup (job_id, enqueued_us, started_us) VALUES (:job_id, :t, $(now_us_sql "$backend"))"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  bench_sql "$backend" "CREATE TABLE bench_pickup (job_id TEXT PRIMARY KEY, enqueued_us BIGINT, started_us BIGINT)" >/dev/null
  bench_sql "$backend" "$(old_rows_sql "$backend")" >/dev/null
  [ "$backend" = postgresql ] && psql -q "$DBSUP_TEST_PG_URL" -c "VACUUM ANALYZE dbsup_jobs" -c "CHECKPOINT" >/dev/null
  launched_us="$(now_us "$backend")"
  "$bin" --config "$work/c.toml" --workers 8 --log-level error &
  pid=$!
  "$enqueuer" "$work/c.toml" mark 1000000 20 &
  enq=$!
  # The keeper's first prune comes 10 s after its start (QueueKeeper's prune_delay).
  start_us=$((launched_us + 10000000))
  while [ "$(left "$backend")" -ne 0 ]; do sleep 1; done
  end_us="$(now_us "$backend")"
  sleep 2
  kill -TERM "$enq" 2>/dev/null || true; wait "$enq" 2>/dev/null || true
  kill -TERM "$pid"; wait "$pid"
  before="$(bench_sql "$backend" "SELECT (started_us - enqueued_us) / 1000.0 FROM bench_pickup WHERE enqueued_us BETWEEN $launched_us + 3000000 AND $start_us - 500000" | percentiles)"
  during="$(bench_sql "$backend" "SELECT (started_us - enqueued_us) / 1000.0 FROM bench_pickup WHERE enqueued_us BETWEEN $start_us AND $end_us" | percentiles)"
  printf "%-11s %-32s %-32s %.1f s\n" "$backend" "$before" "$during" \
    "$(awk -v a="$start_us" -v b="$end_us" 'BEGIN {print (b - a) / 1e6}')"
done
