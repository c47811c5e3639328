#!/usr/bin/env bash
# The test command (SPEC §1): installs what is missing, builds Release, starts
# a private Redis, PostgreSQL and PgBouncer on free 127.0.0.1 ports in a
# temporary directory, runs ctest against them and stops them again.
#
#   ./deploy/test.sh [ctest args...]      e.g. -L unit, -R persistence, -j2
#
# Exits non-zero when a test fails or when no test ran. The last line printed
# is "N passed, F failed" (", S skipped" added when some were skipped).
# Environment: POSTD_BUILD_DIR (default build/release), POSTD_SKIP_BUILD=1 runs
# the tests of the existing build, POSTD_TEST_KEEP=1 keeps the temporary
# directory (service logs) after the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib/common.sh
source deploy/lib/common.sh

build_dir=${POSTD_BUILD_DIR:-build/release}
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
  trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
  stop_ctest
  if [[ -n $services_dir ]]; then
    postd_stop_pgbouncer "$services_dir/pgbouncer" || rc=1
    postd_stop_postgres "$services_dir/postgres" || rc=1
    postd_stop_redis "$services_dir/redis" || rc=1
    if [[ ${POSTD_TEST_KEEP:-0} == 1 ]]; then
      printf 'postd: kept %s\n' "$services_dir" >&2
    else
      rm -rf -- "$services_dir"
    fi
  fi
  [[ -z $summary ]] || printf '%s\n' "$summary"
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

# Run ctest in its own session (so it can be stopped as a group); its output
# goes to the terminal and to LOG. Returns ctest's exit status.
run_ctest() {
  local log=$1 rc=0
  shift
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid -w bash -c 'ctest "$@" 2>&1 | tee "$0"; exit "${PIPESTATUS[0]}"' "$log" \
    --test-dir "$build_dir" --output-on-failure --timeout 600 --no-tests=error "$@" &
  ctest_pid=$!
  wait "$ctest_pid" || rc=$?
  ctest_pid=
  return "$rc"
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

main() {
  local ctest_rc=0 total failed skipped passed
  postd_install_packages
  [[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || postd_build "$build_dir" Release
  start_services
  run_ctest "$services_dir/ctest.log" "$@" || ctest_rc=$?

  if ! parse_summary "$services_dir/ctest.log"; then
    printf 'postd: no test ran (ctest exit %s)\n' "$ctest_rc" >&2
    summary="0 passed, 0 failed"
    return 1
  fi
  passed=$((total - failed - skipped))
  summary="$passed passed, $failed failed"
  ((skipped == 0)) || summary+=", $skipped skipped"
  if ((total == 0 || passed == 0 && failed == 0)); then
    printf 'postd: no test ran\n' >&2
    return 1
  fi
  if ((ctest_rc != 0 || failed != 0)); then
    printf 'postd: tests failed (ctest exit %s)\n' "$ctest_rc" >&2
    return 1
  fi
}

main "$@"
