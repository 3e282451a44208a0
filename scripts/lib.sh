# Shared by scripts/*: the build directory of a variant and the build itself.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# build_dir VARIANT -> build, build-asan or build-tsan
build_dir() {
  case "$1" in
    "") echo "$ROOT/build" ;;
    *) echo "$ROOT/build-$1" ;;
  esac
}

# configure_and_build VARIANT [cmake args...]
configure_and_build() {
  local variant="$1"; shift
  local dir sanitize=""
  dir="$(build_dir "$variant")"
  case "$variant" in
    asan) sanitize=address ;;
    tsan) sanitize=thread ;;
  esac
  cmake -S "$ROOT" -B "$dir" -DDBSUP_SANITIZE="$sanitize" "$@" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log" >&2; return 1; }
  cmake --build "$dir" -j2
}
