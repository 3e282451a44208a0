#!/usr/bin/env bash
# I/O-bound jobs, sync runner vs async runner (`scripts/bench async-runner`,
# which builds Release and starts a throwaway durable PostgreSQL). Each job is
# a C++ handler of io_worker (tests/support/io_worker.cpp) that waits 50 ms,
# then INSERTs one row: io_insert_sync (a sleep: the wait holds a job thread)
# with the defaults, io_insert (a timer: a coroutine) with [worker] mode =
# "async" and its defaults. --workers 8 both; N jobs bulk enqueued first;
# jobs/s from the supervisor's start to the last job succeeded; the rows are
# checked (each n exactly once). Medians of REPS runs.
#   async_runner_bench.sh IO_WORKER [N_SYNC] [N_ASYNC] [REPS]
set -euo pipefail
bin="$1"; n_sync="${2:-3000}"; n_async="${3:-30000}"; reps="${4:-3}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"

one_run() {  # mode n -> jobs/s
  local mode="$1" n="$2" task=io_insert t0 t1 pid rows
  [ "$mode" = sync ] && task=io_insert_sync
  fresh_database postgresql >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "DROP TABLE IF EXISTS io_items" -c "CREATE TABLE io_items (n BIGINT NOT NULL)"
  cat > "$work/c.toml" <<TOML
$(supervisor_toml)
[worker]
mode = "$mode"
[databases.main]
url = "$DBSUP_TEST_PG_URL"
password_env = "DBSUP_TEST_PG_PASSWORD"
TOML
  seq 1 "$n" | sed 's/.*/{"n": &, "ms": 50}/' > "$work/jobs.jsonl"
  "$bin" --config "$work/c.toml" init-db >/dev/null
  "$bin" --config "$work/c.toml" enqueue "$task" --jsonl "$work/jobs.jsonl" >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "CHECKPOINT" >/dev/null
  rm -f "$work/stats.json"
  t0=$(now_ns)
  "$bin" --config "$work/c.toml" --workers 8 --log-level error & pid=$!
  wait_for_succeeded "$n"
  t1=$(now_ns)
  kill -TERM "$pid"; wait "$pid" || true
  rows="$(psql -qAt "$DBSUP_TEST_PG_URL" -c "SELECT COUNT(*) = $n AND COUNT(DISTINCT n) = $n FROM io_items")"
  [ "$rows" = t ] || { echo "io_items does not hold each n exactly once" >&2; exit 1; }
  echo $(( n * 1000000000 / (t1 - t0) ))
}

sync_rates=""; async_rates=""
for _ in $(seq "$reps"); do  # alternated, so drift in the machine hits both alike
  sync_rates+="$(one_run sync "$n_sync")"$'\n'
  async_rates+="$(one_run async "$n_async")"$'\n'
done
s="$(median <<<"$sync_rates")"; a="$(median <<<"$async_rates")"
echo "50 ms wait + 1 INSERT per job, --workers 8, defaults, medians of $reps:"
echo "  sync runner  (threads 4):        $s jobs/s   runs: $(echo $sync_rates)"
echo "  async runner (max_in_flight 64): $a jobs/s   runs: $(echo $async_rates)"
awk -v a="$a" -v s="$s" 'BEGIN { printf "  async / sync: %.1fx (target >= 10x)\n", a / s }'
