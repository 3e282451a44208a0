#!/usr/bin/env bash
# Queue throughput through PgBouncer (transaction pooling) vs directly, in one
# run (`scripts/bench pgbouncer`, which builds Release and starts a throwaway
# durable PostgreSQL and a PgBouncer in front of it): N jobs bulk enqueued, then
# processed by --workers 8 at the defaults, for the `noop` task and a one-INSERT
# SQL task. Three ways to the same server:
#   direct            the default: each connection caches prepared statements;
#   direct, no cache  statement_cache_size = 0: what the cache is worth;
#   pgbouncer         pooler = "transaction" (unnamed statements, the only
#                     correct choice there), listen_url direct for wake-ups.
# Each figure is the median of REPS runs; processing time runs from the
# supervisor's start to the last job succeeded.
#   pgbouncer_bench.sh BINARY [N] [REPS]
set -euo pipefail
bin="$1"; n="${2:-50000}"; reps="${3:-3}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"
write_jobs_jsonl "$n" "$work/jobs.jsonl"

route() {  # way -> its [databases.main] lines beyond the url
  case "$1" in
    direct) printf 'url = "%s"\n' "$DBSUP_TEST_PG_URL" ;;
    nocache) printf 'url = "%s"\n' "$DBSUP_TEST_PG_URL" ;;
    pgbouncer) printf 'url = "%s"\npooler = "transaction"\nlisten_url = "%s"\n' \
                 "$DBSUP_TEST_PGBOUNCER_URL" "$DBSUP_TEST_PG_URL" ;;
  esac
  echo 'password_env = "DBSUP_TEST_PG_PASSWORD"'
  [ "$1" = nocache ] && printf '[monitoring]\nstatement_cache_size = 0\n'
  return 0
}

one_run() {  # way task -> jobs/s
  fresh_database postgresql >/dev/null
  cat > "$work/c.toml" <<TOML
$(supervisor_toml)
[databases.main]
$(route "$1")
[tasks.insert_one]
sql = "INSERT INTO bench_events (job_id) VALUES (:job_id)"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "CREATE TABLE bench_events (job_id TEXT PRIMARY KEY)" >/dev/null
  "$bin" --config "$work/c.toml" enqueue "$2" --jsonl "$work/jobs.jsonl" >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "CHECKPOINT" >/dev/null
  rm -f "$work/stats.json"
  local t0 t1 pid
  t0=$(now_ns)
  "$bin" --config "$work/c.toml" --workers 8 --log-level error & pid=$!
  wait_for_succeeded "$n"
  t1=$(now_ns)
  kill -TERM "$pid"; wait "$pid" || true
  echo $(( n * 1000000000 / (t1 - t0) ))
}

printf "%-11s %-17s %15s %10s\n" task way "process jobs/s" "vs direct"
for task in noop insert_one; do
  direct=""
  for way in direct nocache pgbouncer; do
    label="$way"; [ "$way" = nocache ] && label="direct, no cache"
    rate="$(for _ in $(seq "$reps"); do one_run "$way" "$task"; done | median)"
    [ -z "$direct" ] && direct="$rate"
    printf "%-11s %-17s %15s %10s\n" "$task" "$label" "$rate" \
      "$(awk -v a="$rate" -v b="$direct" 'BEGIN { printf "%.2fx", a / b }')"
  done
done
