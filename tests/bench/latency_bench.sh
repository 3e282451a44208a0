#!/usr/bin/env bash
# Pickup latency and idle cost, end to end with the real binary (run by
# `scripts/bench latency`, which builds Release and starts a throwaway durable
# PostgreSQL first). For each backend and each `[queue] wake` mode, with every
# other setting at its default:
#   - idle: an idle `--workers 8` for IDLE_S seconds: empty claims per second
#     (the workers' own count) and the CPU of the supervisor and its workers,
#     in % of one core;
#   - pickup: N jobs enqueued one at a time through the C++ API (pickup_enqueuer,
#     each in its own transaction, 20 ms apart) into that idle fleet; each job's
#     SQL task records when it started; enqueue to start, p50/p95/p99/max in ms.
# PostgreSQL's clock gives microseconds; SQLite's 'now' has millisecond
# resolution, so its figures are truncated to the millisecond below.
# Each figure is the median of REPS runs. BACKENDS and WAKES narrow the runs.
#   latency_bench.sh BINARY ENQUEUER [N] [REPS] [IDLE_S]
set -euo pipefail
bin="$1"; enqueuer="$2"; n="${3:-1000}"; reps="${4:-3}"; idle_s="${5:-30}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"

write_config() {  # backend wake -> config file
  local db now_us
  db="$(fresh_database "$1")"
  now_us="$(now_us_sql "$1")"
  cat > "$work/c.toml" <<TOML
[supervisor]
stats_file = "$work/stats.json"
[databases.main]
$db
[queue]
wake = "$2"
[tasks.mark]
sql = "INSERT INTO bench_pickup (job_id, enqueued_us, started_us) VALUES (:job_id, :t, $now_us)"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  local table="CREATE TABLE bench_pickup (job_id TEXT PRIMARY KEY, enqueued_us BIGINT, started_us BIGINT)"
  if [ "$1" = sqlite ]; then sqlite3 "$work/bench.db" "$table"
  else psql -q "$DBSUP_TEST_PG_URL" -c "$table" -c "CHECKPOINT" >/dev/null; fi
}

fleet_ticks() {  # CPU clock ticks of the supervisor $1 and its live workers
  local total=0 pid stat f
  for pid in "$1" $(pgrep -P "$1"); do
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    read -r -a f <<<"${stat##*) }"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

empty_claims() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"]["empty_claims_total"])' "$work/stats.json"; }

latencies() { bench_sql "$1" "SELECT (started_us - enqueued_us) / 1000.0 FROM bench_pickup"; }

one_run() {  # backend wake -> "claims_per_s cpu_pct p50 p95 p99 max"
  write_config "$1" "$2"
  "$bin" --config "$work/c.toml" --workers 8 --log-level error &
  local pid=$! c0 c1 t0 t1
  until python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["supervisor"]["workers_alive"] != 8)' \
        "$work/stats.json" 2>/dev/null; do sleep 0.1; done
  sleep 2  # start-up claims done
  c0=$(empty_claims); t0=$(fleet_ticks "$pid")
  sleep "$idle_s"
  c1=$(empty_claims); t1=$(fleet_ticks "$pid")
  "$enqueuer" "$work/c.toml" mark "$n" 20
  sleep 1
  kill -TERM "$pid"; wait "$pid"
  echo "$(( (c1 - c0) / idle_s )).$(( (c1 - c0) * 10 / idle_s % 10 ))" \
       "$(awk -v t=$((t1 - t0)) -v s="$idle_s" 'BEGIN {printf "%.2f", t / s}')" \
       "$(latencies "$1" | percentiles)"
}

percentiles() {  # numbers on stdin -> "p50 p95 p99 max"
  sort -n | awk '{a[NR]=$1} END {
    n = NR; if (n == 0) { print "- - - -"; exit }
    printf "%.2f %.2f %.2f %.2f", a[int(n*0.50+0.5)], a[int(n*0.95+0.5)], a[int(n*0.99+0.5)], a[n] }'
}

printf "%-11s %-5s %14s %12s %9s %9s %9s %9s\n" backend wake "empty claims/s" "idle CPU %" \
  "p50 ms" "p95 ms" "p99 ms" "max ms"
for backend in ${BACKENDS:-sqlite postgresql}; do
  for wake in ${WAKES:-auto poll}; do
    results="$(for _ in $(seq "$reps"); do one_run "$backend" "$wake"; done)"
    col() { cut -d' ' -f"$1" <<<"$results" | median; }
    printf "%-11s %-5s %14s %12s %9s %9s %9s %9s\n" "$backend" "$wake" "$(col 1)" "$(col 2)" \
      "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)"
  done
done
