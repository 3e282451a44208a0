# Shared by the queue bench scripts (sourced, not run).

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

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
