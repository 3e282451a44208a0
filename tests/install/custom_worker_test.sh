#!/usr/bin/env bash
# The library as its users get it: install the project into a staging prefix,
# build examples/custom_worker against it with nothing but
# find_package(dbsupervisor) (and again with pkg-config), then run the example
# end to end: its workers (the example's own executable) run its C++ task.
# Usage: custom_worker_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/stage" --component development >/dev/null
[ -f "$work/stage/include/dbsup/dbsupervisor.hpp" ] || fail "no header installed"

cmake -S "$source_dir/examples/custom_worker" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/stage" >"$work/configure.log" || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build"; }
bin="$work/build/custom_worker"

pc_dir=$(dirname "$(find "$work/stage" -name dbsupervisor.pc)")
# shellcheck disable=SC2046
g++ -O0 -o "$work/custom_worker_pc" "$source_dir/examples/custom_worker/main.cpp" \
  $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs dbsupervisor) || fail "pkg-config build"
LD_LIBRARY_PATH="$(dirname "$pc_dir")" "$work/custom_worker_pc" --version | grep -q '^dbsupervisor ' ||
  fail "the pkg-config build does not run"

cd "$work"
export DATABASE_NAME="$work/jobs.db"
"$bin" init-db >/dev/null
for width in 100 200 300; do "$bin" enqueue resize --payload "{\"width\": $width}" >/dev/null; done
"$bin" enqueue resize --payload '{"width": -1}' >/dev/null
if "$bin" enqueue no_such_task >/dev/null 2>&1; then fail "an unknown task was accepted"; fi

"$bin" --workers 2 --demo 0 --stats-file "$work/stats.json" --log-level warn &
pid=$!
counts=""
for _ in $(seq 100); do
  counts=$("$bin" --log-level warn jobs counts --json)
  python3 -c 'import json,sys; s=json.loads(sys.argv[1])["by_state"]; sys.exit(0 if s.get("succeeded")==3 and s.get("dead")==1 else 1)' "$counts" && break
  sleep 0.2
done
kill -TERM "$pid"
wait "$pid" || fail "the supervisor exited $?"
pid=""
python3 -c 'import json,sys; s=json.loads(sys.argv[1])["by_state"]; sys.exit(0 if s.get("succeeded")==3 and s.get("dead")==1 else 1)' "$counts" ||
  fail "jobs did not end as expected: $counts"
widths=$(sqlite3 "$work/jobs.db" "SELECT group_concat(width) FROM (SELECT width FROM thumbnails ORDER BY width)")
[ "$widths" = "100,200,300" ] || fail "thumbnails: '$widths'"
"$bin" --log-level warn jobs list --state dead | grep -q "width must be from 1 to 10000" ||
  fail "the dead job's error is not the handler's"
echo "custom_worker: 3 C++ jobs succeeded, 1 dead with the handler's error (CMake and pkg-config builds)"
