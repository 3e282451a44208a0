#!/usr/bin/env bash
# Queue throughput, end to end with the real binary (run by `scripts/bench queue`,
# which builds Release and starts a throwaway durable PostgreSQL first):
# bulk enqueue of N jobs from JSON Lines, then processing them with --workers 8,
# for the `noop` task and a one-INSERT SQL task, on SQLite and PostgreSQL, each
# with two configurations in the same run:
#   defaults  nothing tuned: what a new user gets;
#   tuned     the best hand-tuned setting measured before claims tuned
#             themselves: one thread per worker claiming 1024 jobs at a time.
# Then a mixed workload at the defaults: N/10 jobs, 90% `noop` and 10% `sleep`
# of 200 ms, bulk enqueued (jobs/s), and the same mix arriving steadily at
# 250 jobs/s for 8 s, where each short job records when it started: its wait
# from enqueue to start, p50/p99 in ms.
# Each figure is the median of REPS runs; processing time runs from the
# supervisor's start (start-up included) to the last job succeeded.
#   queue_bench.sh BINARY ENQUEUER [N] [REPS]
set -euo pipefail
bin="$1"; enqueuer="$2"; n="${3:-100000}"; reps="${4:-3}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"
write_jobs_jsonl "$n" "$work/jobs.jsonl"
mixed_n=$((n / 10))
seq 1 "$mixed_n" | awk '{ if ($1 % 10 == 0) print "{\"task\": \"sleep\", \"ms\": 200}"; else print "{\"i\": " $1 "}" }' \
  > "$work/mixed.jsonl"

rate() { echo $(( $2 * 1000000000 / ($1 > 0 ? $1 : 1) )); }

tuning() {  # configuration name -> its TOML
  case "$1" in
    defaults) echo "" ;;
    tuned) printf '[worker]\nthreads = 1\n[queue]\nclaim_batch = 1024\n' ;;
  esac
}

write_config() {  # backend configuration -> config file
  local db now_us
  db="$(fresh_database "$1")"
  now_us="$(now_us_sql "$1")"
  cat > "$work/c.toml" <<TOML
[supervisor]
stats_file = "$work/stats.json"
stats_interval_ms = 100
[databases.main]
$db
$(tuning "$2")
[tasks.insert_one]
sql = "INSERT INTO bench_events (job_id) VALUES (:job_id)"
[tasks.mark]
sql = "INSERT INTO bench_pickup (job_id, enqueued_us, started_us) VALUES (:job_id, :t, $now_us)"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  local tables="CREATE TABLE bench_events (job_id TEXT PRIMARY KEY);
CREATE TABLE bench_pickup (job_id TEXT PRIMARY KEY, enqueued_us BIGINT, started_us BIGINT)"
  if [ "$1" = sqlite ]; then
    sqlite3 "$work/bench.db" "$tables"
  else
    # The last run's writes are flushed now, not while this one is timed.
    psql -q "$DBSUP_TEST_PG_URL" -c "$tables" -c "CHECKPOINT" >/dev/null
  fi
}

wait_succeeded() { until grep -q "\"succeeded_total\": $1\b" "$work/stats.json" 2>/dev/null; do sleep 0.02; done; }

one_run() {  # backend configuration task -> "enqueue_rate process_rate"
  write_config "$1" "$2"
  local t0 t1 t2 pid jobs="$work/jobs.jsonl" count="$n" task="$3"
  if [ "$3" = mixed ]; then jobs="$work/mixed.jsonl"; count="$mixed_n"; task=noop; fi
  t0=$(now_ns)
  if [ "$3" = mixed ]; then
    # the sleep lines name their task: split the file by task
    grep -v '"task"' "$jobs" | "$bin" --config "$work/c.toml" enqueue noop --jsonl - >/dev/null
    grep '"task"' "$jobs" | sed 's/"task": "sleep", //' |
      "$bin" --config "$work/c.toml" enqueue sleep --jsonl - >/dev/null
  else
    "$bin" --config "$work/c.toml" enqueue "$task" --jsonl "$jobs" >/dev/null
  fi
  t1=$(now_ns)
  rm -f "$work/stats.json"
  "$bin" --config "$work/c.toml" --workers 8 --log-level error & pid=$!
  wait_succeeded "$count"  # the workers' own count (from shared memory)
  t2=$(now_ns)
  kill -TERM "$pid"; wait "$pid" || true
  echo "$(rate $((t1 - t0)) "$count") $(rate $((t2 - t1)) "$count")"
}

short_waits() {  # backend -> "p50 p99" of the short jobs' waits, ms
  bench_sql "$1" "SELECT (started_us - enqueued_us) / 1000.0 FROM bench_pickup" | sort -n | awk '{a[NR]=$1} END { printf "%.1f %.1f\n", a[int(NR*0.5+0.5)], a[int(NR*0.99+0.5)] }'
}

steady_mix() {  # backend -> "p50 p99"
  write_config "$1" defaults
  rm -f "$work/stats.json"
  local pid
  "$bin" --config "$work/c.toml" --workers 8 --log-level error & pid=$!
  until [ -s "$work/stats.json" ]; do sleep 0.05; done
  sleep 1
  "$enqueuer" "$work/c.toml" mark 2000 4 10  # 250 jobs/s, every 10th a 200 ms sleep
  sleep 1
  kill -TERM "$pid"; wait "$pid" || true
  short_waits "$1"
}

printf "%-11s %-11s %-9s %15s %15s %9s\n" backend task config "enqueue jobs/s" "process jobs/s" "vs tuned"
for backend in sqlite postgresql; do
  for task in noop insert_one; do
    declare -A best=()
    for config in tuned defaults; do
      results="$(for _ in $(seq "$reps"); do one_run "$backend" "$config" "$task"; done)"
      e=$(cut -d' ' -f1 <<<"$results" | median); p=$(cut -d' ' -f2 <<<"$results" | median)
      best[$config]=$p
      ratio=$(awk -v a="$p" -v b="${best[tuned]}" 'BEGIN { printf "%.2fx", a / b }')
      printf "%-11s %-11s %-9s %15s %15s %9s\n" "$backend" "$task" "$config" "$e" "$p" "$ratio"
    done
  done
done
echo
printf "%-11s %22s %24s\n" backend "mixed bulk jobs/s" "steady mix: short p50/p99 ms"
for backend in sqlite postgresql; do
  bulk="$(for _ in $(seq "$reps"); do one_run "$backend" defaults mixed; done | cut -d' ' -f2 | median)"
  waits="$(for _ in $(seq "$reps"); do steady_mix "$backend"; done)"
  printf "%-11s %22s %24s\n" "$backend" "$bulk" "$(cut -d' ' -f1 <<<"$waits" | median) / $(cut -d' ' -f2 <<<"$waits" | median)"
done
