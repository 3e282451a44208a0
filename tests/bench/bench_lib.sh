# Shared by the queue bench scripts (sourced, not run).

# The median of the numbers on stdin, one per line (empty lines ignored: a
# here-string of "$rates" ends with one).
median() { sort -n | awk 'NF {a[++n] = $1} END {print a[int((n + 1) / 2)]}'; }

# N noop payloads, one JSON object per line, into FILE.
write_jobs_jsonl() { seq 1 "$1" | sed 's/.*/{"i": &}/' > "$2"; }

# CPU time used so far by the bench's PostgreSQL (the postmaster of
# $DBSUP_TEST_PGDATA and its processes), in clock ticks (1/100 s), counting the
# backends that have exited (their time is in the postmaster's cutime).
postgres_cpu_ticks() {
  local total=0 postmaster pid stat f
  postmaster="$(head -1 "$DBSUP_TEST_PGDATA/postmaster.pid")"
  for pid in "$postmaster" $(pgrep -P "$postmaster"); do
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    read -r -a f <<<"${stat##*) }"  # fields from the 3rd on: utime is f[11]
    total=$((total + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$total"
}

# A fresh queue database for BACKEND (sqlite: $work/bench.db; postgresql: the
# bench's server, its queue and bench tables dropped); prints its
# [databases.main] lines.
fresh_database() {
  if [ "$1" = sqlite ]; then
    rm -f "$work"/bench.db*
    echo "url = \"sqlite:///$work/bench.db\""
  else
    psql -q "$DBSUP_TEST_PG_URL" -c "SET client_min_messages = warning" \
      -c "DROP TABLE IF EXISTS dbsup_jobs, dbsup_schema, dbsup_queues, dbsup_schedules, bench_events, bench_pickup" >/dev/null
    printf 'url = "%s"\npassword_env = "DBSUP_TEST_PG_PASSWORD"\n' "$DBSUP_TEST_PG_URL"
  fi
}

# SQL for "now" in Unix epoch microseconds on BACKEND (SQLite's has millisecond resolution).
now_us_sql() {
  if [ "$1" = sqlite ]; then echo "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
  else echo "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"; fi
}

# Runs SQL on BACKEND's bench database.
bench_sql() {
  if [ "$1" = sqlite ]; then sqlite3 "$work/bench.db" "$2"; else psql -qAt "$DBSUP_TEST_PG_URL" -c "$2"; fi
}

# Nanoseconds since the epoch.
now_ns() { date +%s%N; }

# The [supervisor] section every end-to-end bench run uses: stats in $work, every 100 ms.
supervisor_toml() { printf '[supervisor]\nstats_file = "%s"\nstats_interval_ms = 100\n' "$work/stats.json"; }

# Waits until the stats file says N jobs succeeded.
wait_for_succeeded() {
  until grep -q "\"succeeded_total\": $1\b" "$work/stats.json" 2>/dev/null; do sleep 0.02; done
}
