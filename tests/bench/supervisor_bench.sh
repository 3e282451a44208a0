#!/usr/bin/env bash
# Supervisor start-up and shutdown with the real binary on SQLite (run by
# `scripts/bench supervisor`): time from exec to all 8 workers reporting ready in
# the stats file, and from SIGTERM to exit with idle workers. Medians of REPS runs, ms.
# The stats file is polled by one python3 process (no fork per poll: a grep every
# few milliseconds would take CPU from the workers starting on 2 cores).
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
python3 - "$bin" "$work" "$reps" <<'PY'
import os, signal, statistics, subprocess, sys, time
binary, work, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
stats = os.path.join(work, "stats.json")
ready, stop = [], []
for _ in range(reps):
    if os.path.exists(stats):
        os.remove(stats)
    t0 = time.monotonic()
    sup = subprocess.Popen([binary, "--config", os.path.join(work, "c.toml"), "--workers", "8",
                            "--log-level", "error"])
    while True:
        try:
            with open(stats) as f:
                if f.read().count('"state": "ready"') == 8:
                    break
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    t1 = time.monotonic()
    sup.send_signal(signal.SIGTERM)
    sup.wait()
    t2 = time.monotonic()
    ready.append((t1 - t0) * 1000)
    stop.append((t2 - t1) * 1000)
print(f"8 workers ready after start: {statistics.median(ready):.0f} ms (target <= 300); "
      f"runs: {' '.join(f'{r:.0f}' for r in ready)}")
print(f"SIGTERM to exit, idle workers: {statistics.median(stop):.0f} ms (target <= 500)")
PY
