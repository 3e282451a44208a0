#!/usr/bin/env bash
# What the dashboard costs the queue (`scripts/bench dashboard`, which builds
# Release and starts a throwaway durable PostgreSQL): N noop jobs bulk
# enqueued, then processed by --workers 8 at the defaults with --dashboard on,
#   quiet   nobody looks at it;
#   loaded  200 requests at once, once a second until the jobs are done, as
#           200 open dashboards polling would (one curl --parallel:
#           /api/overview, /api/jobs?state=dead and /api/jobs?page=3 in turn),
#           every answer checked for status 200;
#   flood   the same 200 at once, again as soon as they are answered.
# The client runs on the same cores as the queue, so "loaded" also pays for it.
# Each figure is the median of REPS runs, from the supervisor's start to the
# last job succeeded.
#   dashboard_bench.sh BINARY [N] [REPS]
set -euo pipefail
bin="$1"; n="${2:-50000}"; reps="${3:-3}"
work="$(mktemp -d)"; trap 'kill -TERM $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/bench_lib.sh"
write_jobs_jsonl "$n" "$work/jobs.jsonl"
port=$((20000 + RANDOM % 20000))
for i in $(seq 200); do
  case $((i % 3)) in
    0) echo "url = \"http://127.0.0.1:$port/api/overview\"" ;;
    1) echo "url = \"http://127.0.0.1:$port/api/jobs?state=dead\"" ;;
    2) echo "url = \"http://127.0.0.1:$port/api/jobs?page=3\"" ;;
  esac
  echo 'output = "/dev/null"'
done > "$work/urls.curl"

load() {  # pause: until the file $work/stop exists, 200 at once every PAUSE s, counting the answers
  local ok=0 bad=0 codes
  while [ ! -e "$work/stop" ]; do
    [ "$1" != 0 ] && sleep "$1"
    codes="$(curl -s --no-progress-meter --parallel --parallel-max 200 -K "$work/urls.curl" \
      -w '%{http_code}\n' 2>/dev/null || true)"
    ok=$((ok + $(grep -c '^200$' <<<"$codes" || true)))
    bad=$((bad + $(grep -vc '^200$' <<<"$codes" || true)))
  done
  echo "$ok $bad" > "$work/answers"
}

one_run() {  # mode -> jobs/s (and the answers in $work/answers)
  fresh_database postgresql >/dev/null
  cat > "$work/c.toml" <<TOML
$(supervisor_toml)
[databases.main]
url = "$DBSUP_TEST_PG_URL"
password_env = "DBSUP_TEST_PG_PASSWORD"
TOML
  "$bin" --config "$work/c.toml" init-db >/dev/null
  "$bin" --config "$work/c.toml" enqueue noop --jsonl "$work/jobs.jsonl" >/dev/null
  psql -q "$DBSUP_TEST_PG_URL" -c "CHECKPOINT" >/dev/null
  rm -f "$work/stats.json" "$work/stop" "$work/answers"
  local t0 t1 pid loader=""
  t0=$(now_ns)
  "$bin" --config "$work/c.toml" --workers 8 --log-level error --dashboard "$port" & pid=$!
  if [ "$1" = flood ]; then
    until curl -s -o /dev/null "http://127.0.0.1:$port/api/overview"; do sleep 0.01; done
    load 0 & loader=$!
  fi
  if [ "$1" = loaded ]; then
    until curl -s -o /dev/null "http://127.0.0.1:$port/api/overview"; do sleep 0.01; done
    load 1 & loader=$!
  fi
  wait_for_succeeded "$n"
  t1=$(now_ns)
  touch "$work/stop"
  [ -n "$loader" ] && wait "$loader"
  kill -TERM "$pid"; wait "$pid" || true
  echo $(( n * 1000000000 / (t1 - t0) ))
}

printf "%-8s %15s %10s %s\n" mode "process jobs/s" "vs quiet" "API answers (200 / other)"
quiet=""
for mode in quiet loaded flood; do
  rates=""
  answers=""
  for _ in $(seq "$reps"); do
    rates+="$(one_run "$mode")"$'\n'
    [ -e "$work/answers" ] && answers+="$(cat "$work/answers") "
  done
  rate="$(printf '%s' "$rates" | median)"
  [ -z "$quiet" ] && quiet="$rate"
  printf "%-8s %15s %10s %s\n" "$mode" "$rate" \
    "$(awk -v a="$rate" -v b="$quiet" 'BEGIN { printf "%.2fx", a / b }')" "${answers:--}"
done
