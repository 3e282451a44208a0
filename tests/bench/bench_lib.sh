# Shared by the queue bench scripts (sourced, not run).

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# N noop payloads, one JSON object per line, into FILE.
write_jobs_jsonl() { seq 1 "$1" | sed 's/.*/{"i": &}/' > "$2"; }
