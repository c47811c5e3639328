#!/usr/bin/env bash
# Runs every libFuzzer target of a POSTD_FUZZ=ON build for a bounded time,
# one after the other (one core) unless FUZZ_JOBS says otherwise, each over a
# scratch copy of its committed corpus (tests/fuzz/corpus/<target>/ never
# grows).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
#
# FUZZ_TARGETS="fuzz_query fuzz_token" runs only those; FUZZ_JOBS=2 runs two
# targets at a time (each still single-threaded, so one per core). Prints
# each target's executions and a total line ("fuzz: E executions across T
# targets, C crashes", which deploy/test.sh counts); exits 1 if a target
# crashed, leaked, timed out or ran out of memory, naming it and the input
# that did it (kept under BUILD_DIR/fuzz-artifacts/<target>/).
set -euo pipefail

if (($# != 2)) || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 BUILD_DIR SECONDS_PER_TARGET" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

all_targets=(fuzz_http_request fuzz_create_body fuzz_query fuzz_token
  fuzz_redis_reply fuzz_database_url fuzz_multipart)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"

# The dictionary a target uses, if any.
dict_of() {
  case $1 in
  fuzz_http_request | fuzz_query) echo "$here/http.dict" ;;
  fuzz_redis_reply) echo "$here/redis.dict" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

jobs=${FUZZ_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_JOBS must be a positive number, not '$jobs'" >&2; exit 2; }
for target in "${targets[@]}"; do
  bin=$build_dir/tests/fuzz/$target
  [[ -x $bin ]] || { echo "$target: not built ($bin)" >&2; exit 2; }
done

scratch=$(mktemp -d)
# Fuzzers still running (an interrupted run) end with the script.
cleanup() {
  local f
  for f in "$scratch"/*.pid; do
    [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null
  done
  wait
  rm -rf -- "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_target TARGET: fuzz TARGET over a scratch copy of its corpus; its
# output goes to $scratch/TARGET.log, its exit status to $scratch/TARGET.rc.
run_target() {
  local target=$1 corpus artifacts dict args rc=0
  corpus=$scratch/$target
  mkdir -p "$corpus"
  cp -- "$here/corpus/$target"/* "$corpus/"
  artifacts=$build_dir/fuzz-artifacts/$target
  mkdir -p "$artifacts"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$artifacts/")
  dict=$(dict_of "$target")
  [[ -n $dict ]] && args+=(-dict="$dict")
  "$build_dir/tests/fuzz/$target" "${args[@]}" "$corpus" >"$scratch/$target.log" 2>&1 &
  echo "$!" >"$scratch/$target.pid"
  wait "$!" || rc=$?
  rm -f -- "$scratch/$target.pid"
  echo "$rc" >"$scratch/$target.rc"
}

# report_target TARGET: print how TARGET's run went; adds to total, failed.
report_target() {
  local target=$1 log=$scratch/$1.log artifacts=$build_dir/fuzz-artifacts/$1 rc runs crash
  rc=$(cat "$scratch/$target.rc" 2>/dev/null) || rc=1
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  runs=${runs:-0}
  total=$((total + runs))
  if ((rc != 0)); then
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    failed+=("$target")
    printf '%s: FAILED (exit %d) after %d executions; input: %s\n' \
      "$target" "$rc" "$runs" "${crash:-none written}"
    cp -- "$log" "$artifacts/last-run.log"
    grep -E -m 20 'ERROR: |SUMMARY: |runtime error|invariant failed|#[0-9]+ 0x' \
      "$log" | head -n 30 || true
    echo "  (full log: $artifacts/last-run.log)"
  else
    printf '%s: %d executions in %ds\n' "$target" "$runs" "$seconds"
  fi
}

total=0
failed=()
# FUZZ_JOBS targets at a time; every run lasts SECONDS, so batches lose
# nothing against a pool.
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  for target in "${batch[@]}"; do
    run_target "$target" &
  done
  wait
  for target in "${batch[@]}"; do
    report_target "$target"
  done
done

printf 'fuzz: %d executions across %d targets, %d crashes\n' \
  "$total" "${#targets[@]}" "${#failed[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
