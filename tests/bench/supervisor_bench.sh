#!/usr/bin/env bash
# Supervisor start-up and shutdown with the real binary on SQLite (run by
# `scripts/bench supervisor`): time from exec to all 8 workers reporting ready in
# the stats file, and from SIGTERM to exit with idle workers. Medians of REPS runs, ms.
#   supervisor_bench.sh BINARY [REPS]
set -euo pipefail
bin="$1"; reps="${2:-5}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cat > "$work/c.toml" <<TOML
[supervisor]
stats_file = "$work/stats.json"
stats_interval_ms = 10
[databases.main]
url = "sqlite:///$work/bench.db"
TOML
"$bin" --config "$work/c.toml" init-db >/dev/null
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ready=(); stop=()
for _ in $(seq "$reps"); do
  rm -f "$work/stats.json"
  t0=$(now_ms)
  "$bin" --config "$work/c.toml" --workers 8 --log-level error &
  pid=$!
  until [ "$(grep -c '"state": "ready"' "$work/stats.json" 2>/dev/null || true)" = 8 ]; do
    sleep 0.005
  done
  t1=$(now_ms)
  kill -TERM "$pid"; wait "$pid"
  t2=$(now_ms)
  ready+=($((t1 - t0))); stop+=($((t2 - t1)))
done
echo "8 workers ready after start: $(printf '%s\n' "${ready[@]}" | median) ms (target <= 300)"
echo "SIGTERM to exit, idle workers: $(printf '%s\n' "${stop[@]}" | median) ms (target <= 500)"
