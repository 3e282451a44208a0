#!/usr/bin/env bash
# Queue throughput, end to end with the real binary (run by `scripts/bench queue`,
# which builds Release and starts a throwaway PostgreSQL first):
#   bulk enqueue of N jobs from JSON Lines, then processing them with --workers 8,
#   for the `noop` task and a one-INSERT SQL task, on SQLite and PostgreSQL.
# Each figure is the median of REPS runs, in jobs per second; processing time runs
# from the supervisor's start (start-up included) to the last job succeeded.
# Tuned for throughput: one thread per worker claiming 1024 jobs at a time. With
# the defaults (4 threads, claim_batch 32) 32 claimers on 2 cores spend
# PostgreSQL's CPU skipping each other's locked rows (profiled: see README), and
# each commit (on SQLite, each turn at the one write lock) serves fewer jobs:
# 1024 measured 20-50% faster than 256 on SQLite, 15-20% on PostgreSQL.
#   queue_bench.sh BINARY [N] [REPS]
set -euo pipefail
bin="$1"; n="${2:-100000}"; reps="${3:-3}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"
write_jobs_jsonl "$n" "$work/jobs.jsonl"

now_ns() { date +%s%N; }
rate() { echo $(( $2 * 1000000000 / ($1 > 0 ? $1 : 1) )); }

write_config() {  # backend -> config file
  local db
  if [ "$1" = sqlite ]; then
    rm -f "$work"/bench.db*
    db="url = \"sqlite:///$work/bench.db\""
  else
    psql -q "$DBSUP_TEST_PG_URL" -c "SET client_min_messages = warning" \
      -c "DROP TABLE IF EXISTS dbsup_jobs, dbsup_schema, bench_events" \
      >/dev/null
    db="url = \"$DBSUP_TEST_PG_URL\"
password_env = \"DBSUP_TEST_PG_PASSWORD\""
  fi
  cat > "$work/c.toml" <<TOML
[supervisor]
stats_file = "$work/stats.json"
stats_interval_ms = 100
[databases.main]
$db
pool_size = 6
[worker]
threads = 1
[queue]
claim_batch = 1024
poll_interval_ms = 20
[tasks.insert_one]
sql = "INSERT INTO bench_events (job_id) VALUES (:job_id)"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  if [ "$1" = sqlite ]; then
    sqlite3 "$work/bench.db" "CREATE TABLE bench_events (job_id TEXT PRIMARY KEY)"
  else
    # The last run's writes are flushed now, not while this one is timed.
    psql -q "$DBSUP_TEST_PG_URL" -c "CREATE TABLE bench_events (job_id TEXT PRIMARY KEY)" \
      -c "CHECKPOINT" >/dev/null
  fi
}

one_run() {  # backend task -> "enqueue_rate process_rate"
  write_config "$1"
  local t0 t1 t2 pid
  t0=$(now_ns)
  "$bin" --config "$work/c.toml" enqueue "$2" --jsonl "$work/jobs.jsonl" >/dev/null
  t1=$(now_ns)
  rm -f "$work/stats.json"
  "$bin" --config "$work/c.toml" --workers 8 --log-level error &
  pid=$!
  # the workers' own count (from shared memory), not a query on the table
  until grep -q "\"succeeded_total\": $n\b" "$work/stats.json" 2>/dev/null; do sleep 0.05; done
  t2=$(now_ns)
  kill -TERM "$pid"; wait "$pid"
  echo "$(rate $((t1 - t0)) "$n") $(rate $((t2 - t1)) "$n")"
}

printf "%-11s %-11s %18s %18s\n" backend task "enqueue jobs/s" "process jobs/s"
for backend in sqlite postgresql; do
  for task in noop insert_one; do
    results="$(for _ in $(seq "$reps"); do one_run "$backend" "$task"; done)"
    printf "%-11s %-11s %18s %18s\n" "$backend" "$task" \
      "$(cut -d' ' -f1 <<<"$results" | median)" "$(cut -d' ' -f2 <<<"$results" | median)"
  done
done
