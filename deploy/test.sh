#!/usr/bin/env bash
# The test command (SPEC §1): installs what is missing, builds Release, starts
# a private Redis, PostgreSQL and PgBouncer on free 127.0.0.1 ports in a
# temporary directory, runs ctest against them and stops them again.
#
#   ./deploy/test.sh [ctest args...]      e.g. -L unit, -R persistence, -j2
#
# After the Release run, against the same services, it builds a second tree
# with AddressSanitizer + UBSan (Debug, POSTD_SANITIZE=ON) and runs the same
# ctest suite there; the postd binary the end-to-end tests spawn is that
# tree's, so the server runs sanitized too. ASan and LSan reports of every
# process (test binaries and spawned servers alike) are written to files and
# printed at the end; any report fails the run, even from a test that passed.
# (GCC 12's UBSan ignores log_path: its reports go to stderr, and with
# halt_on_error the process exits 1, which fails the test that ran it.)
# Suppressions (third-party code only): tests/sanitizers/{ubsan,lsan}.supp.
#
# Exits non-zero when a test fails in either run, when no test ran, when a
# sanitizer reported, or when clang-tidy found anything. The last line printed
# is "N passed, F failed" summed over both runs and clang-tidy (", S skipped"
# added when some were skipped, ", R sanitizer reports" when there were any).
# The Release build treats warnings as errors (POSTD_WERROR). Checks on the sources
# run as ctest tests labelled lint (include order, clang-format, luacheck).
# Right after the Release build, clang-tidy (tests/lint/clang_tidy.sh, ~10 min
# on 2 cores) checks core/ persistence/ actors/ http/ app/ with that tree's
# compile_commands.json (CMakeLists.txt always exports it); it counts as one
# test in the summary: a finding is a failed test and fails the run.
#
# Environment: POSTD_BUILD_DIR (default build/release), POSTD_ASAN_BUILD_DIR
# (default build/asan), POSTD_SKIP_SANITIZE=1 skips the sanitizer build and
# run (CI runs it), POSTD_SKIP_TIDY=1 skips clang-tidy (CI runs it; for quick
# local runs), POSTD_SKIP_BUILD=1 runs the tests of the existing builds,
# POSTD_TEST_KEEP=1 keeps the temporary directory (service logs, sanitizer
# reports) after the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib/common.sh
source deploy/lib/common.sh

build_dir=${POSTD_BUILD_DIR:-build/release}
asan_dir=${POSTD_ASAN_BUILD_DIR:-build/asan}
services_dir=
ctest_pid=
summary=

stop_ctest() {
  [[ -n $ctest_pid ]] || return 0
  # ctest runs in its own session and process group: end the whole group,
  # test binaries and whatever they spawned included.
  kill -TERM -- "-$ctest_pid" 2>/dev/null || return 0
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$ctest_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$ctest_pid" 2>/dev/null || true
  wait "$ctest_pid" 2>/dev/null || true
  ctest_pid=
}

cleanup() {
  local rc=$?
  # Neither a second Ctrl-C nor a closed stdout/stderr (`test.sh | tee log`
  # ended with the Ctrl-C) may cut the clean-up short.
  trap '' INT TERM PIPE
  stop_ctest
  if [[ -n $services_dir ]]; then
    postd_stop_pgbouncer "$services_dir/pgbouncer" || rc=1
    postd_stop_postgres "$services_dir/postgres" || rc=1
    postd_stop_redis "$services_dir/redis" || rc=1
    if [[ ${POSTD_TEST_KEEP:-0} == 1 ]]; then
      _postd_err "kept $services_dir"
    else
      rm -rf -- "$services_dir"
    fi
  fi
  [[ -z $summary ]] || printf '%s\n' "$summary" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_services() {
  postd_service_user
  services_dir=$(mktemp -d "${TMPDIR:-/tmp}/postd-test.XXXXXX")
  chmod 0755 "$services_dir"

  local redis_port pg_port pgbouncer_port
  redis_port=$(postd_free_port)
  postd_start_redis "$services_dir/redis" "$redis_port"
  pg_port=$(postd_free_port)
  # Test data is throw-away: no fsync, for speed. run.sh keeps fsync on.
  postd_start_postgres "$services_dir/postgres" "$pg_port" \
    fsync=off synchronous_commit=off full_page_writes=off
  pgbouncer_port=$(postd_free_port)
  postd_start_pgbouncer "$services_dir/pgbouncer" "$pgbouncer_port" "$pg_port"

  export POSTD_TEST_SERVICES_DIR=$services_dir
  export POSTD_TEST_LIB=$POSTD_REPO/deploy/lib/common.sh
  export POSTD_TEST_REDIS_HOST=127.0.0.1
  export POSTD_TEST_REDIS_PORT=$redis_port
  export POSTD_TEST_REDIS_DIR=$services_dir/redis
  export POSTD_TEST_PG_HOST=127.0.0.1
  export POSTD_TEST_PG_PORT=$pg_port
  export POSTD_TEST_PG_USER=postgres
  export POSTD_TEST_PG_DIR=$services_dir/postgres
  export POSTD_TEST_PGBOUNCER_HOST=127.0.0.1
  export POSTD_TEST_PGBOUNCER_PORT=$pgbouncer_port
  export POSTD_TEST_PGBOUNCER_DIR=$services_dir/pgbouncer
  printf 'postd: Redis 127.0.0.1:%s, PostgreSQL 127.0.0.1:%s, PgBouncer 127.0.0.1:%s in %s\n' \
    "$redis_port" "$pg_port" "$pgbouncer_port" "$services_dir"
}

# run_ctest LOG DIR [VAR=value ...] -- [ctest args...]: run ctest on build
# tree DIR with the given environment in its own session (so it can be
# stopped as a group); its output goes to the terminal and to LOG. Returns
# ctest's exit status.
run_ctest() {
  local log=$1 dir=$2 rc=0 env=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do env+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid -w env "${env[@]}" bash -c 'ctest "$@" 2>&1 | tee "$0"; exit "${PIPESTATUS[0]}"' "$log" \
    --test-dir "$dir" --output-on-failure --timeout 600 --no-tests=error "$@" &
  ctest_pid=$!
  wait "$ctest_pid" || rc=$?
  ctest_pid=
  return "$rc"
}

# Sets sanitizer_env to the sanitizer options; with a REPORT_DIR, ASan/LSan
# reports go to files there (report.<exe>.<pid>) instead of stderr, so those
# of servers whose stderr a test throws away are seen too.
sanitizer_options() {
  local report_dir=${1:-} log=
  [[ -z $report_dir ]] || log=:log_path=$report_dir/report:log_exe_name=1
  sanitizer_env=(
    "ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1:halt_on_error=1$log"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$POSTD_REPO/tests/sanitizers/ubsan.supp$log"
    "LSAN_OPTIONS=suppressions=$POSTD_REPO/tests/sanitizers/lsan.supp:print_suppressions=0"
  )
}

# Configure and build the sanitizer tree. The sanitizer options apply here
# too: gtest_discover_tests runs the test binaries to list their tests.
build_sanitized() {
  local dir=$1 gen=(-G Ninja) sanitizer_env
  [[ -f $dir/CMakeCache.txt ]] && gen=()
  sanitizer_options
  cmake -S "$POSTD_REPO" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug \
    -DPOSTD_SANITIZE=ON -DPOSTD_BUILD_BENCH=OFF ||
    { printf 'postd: cmake configure failed in %s\n' "$dir" >&2; return 1; }
  env "${sanitizer_env[@]}" cmake --build "$dir" -j "${POSTD_BUILD_JOBS:-2}" ||
    { printf 'postd: build failed in %s\n' "$dir" >&2; return 1; }
}

# Sets total, failed, skipped from ctest's output in LOG; fails when ctest
# printed no summary (it found no test, or it was cut short).
parse_summary() {
  local log=$1 line
  total=0 failed=0 skipped=0
  if grep -q 'No tests were found' "$log"; then
    return 1
  fi
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1) || return 1
  [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]] || return 1
  failed=${BASH_REMATCH[1]}
  total=${BASH_REMATCH[2]}
  skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$log") || true
}

# run_suite NAME DIR [VAR=value ...] -- [ctest args...]: run the suite of
# build tree DIR; adds its counts to all_passed, all_failed, all_skipped.
# Fails when a test failed or none ran.
run_suite() {
  local name=$1 dir=$2 log ctest_rc=0 total failed skipped passed
  log=$services_dir/ctest-$name.log
  shift 2
  printf 'postd: %s tests (%s)\n' "$name" "$dir"
  run_ctest "$log" "$dir" "$@" || ctest_rc=$?
  if ! parse_summary "$log"; then
    printf 'postd: %s: no test ran (ctest exit %s)\n' "$name" "$ctest_rc" >&2
    return 1
  fi
  passed=$((total - failed - skipped))
  all_passed=$((all_passed + passed))
  all_failed=$((all_failed + failed))
  all_skipped=$((all_skipped + skipped))
  printf 'postd: %s: %s passed, %s failed, %s skipped\n' "$name" "$passed" "$failed" "$skipped"
  if ((total == 0 || passed == 0 && failed == 0)); then
    printf 'postd: %s: no test ran\n' "$name" >&2
    return 1
  fi
  if ((ctest_rc != 0 || failed != 0)); then
    printf 'postd: %s: tests failed (ctest exit %s)\n' "$name" "$ctest_rc" >&2
    return 1
  fi
}

# clang-tidy over the sources with the compile commands of build tree DIR,
# counted as one test in all_passed or all_failed; sets tidy_failed.
run_tidy() {
  local dir=$1
  printf 'postd: clang-tidy (%s)\n' "$dir"
  if tests/lint/clang_tidy.sh "$dir" "${POSTD_BUILD_JOBS:-2}"; then
    all_passed=$((all_passed + 1))
  else
    printf 'postd: clang-tidy failed, see above\n' >&2
    all_failed=$((all_failed + 1))
    tidy_failed=1
  fi
}

# Print the sanitizer reports in DIR on stderr; sets reports to their number.
show_sanitizer_reports() {
  local dir=$1 f
  reports=0
  for f in "$dir"/report.*; do
    [[ -s $f ]] || continue
    reports=$((reports + 1))
    printf 'postd: sanitizer report %s:\n' "${f##*/}" >&2
    sed 's/^/    /' "$f" >&2
  done
}

main() {
  local rc=0 all_passed=0 all_failed=0 all_skipped=0 reports=0 tidy_failed=0
  local sanitizer_env
  postd_install_packages
  [[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || postd_build "$build_dir" Release -DPOSTD_WERROR=ON
  if [[ ${POSTD_SKIP_TIDY:-0} != 1 ]]; then
    run_tidy "$build_dir" || true
    ((tidy_failed == 0)) || rc=1
  fi
  start_services
  run_suite release "$build_dir" -- "$@" || rc=1

  if [[ ${POSTD_SKIP_SANITIZE:-0} != 1 ]]; then
    if [[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || build_sanitized "$asan_dir"; then
      mkdir -p "$services_dir/sanitizer"
      sanitizer_options "$services_dir/sanitizer"
      run_suite asan "$asan_dir" "${sanitizer_env[@]}" -- "$@" || rc=1
      show_sanitizer_reports "$services_dir/sanitizer"
      if ((reports)); then
        printf 'postd: asan: %s sanitizer report(s), see above\n' "$reports" >&2
        rc=1
      fi
    else
      rc=1
    fi
  fi

  summary="$all_passed passed, $all_failed failed"
  ((all_skipped == 0)) || summary+=", $all_skipped skipped"
  ((reports == 0)) || summary+=", $reports sanitizer reports"
  ((tidy_failed == 0)) || summary="postd: clang-tidy had findings (1 failed)"$'\n'"$summary"
  return "$rc"
}

main "$@"
