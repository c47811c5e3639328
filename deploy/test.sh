#!/usr/bin/env bash
# The test command (SPEC §1): installs what is missing, builds Release, starts
# a private Redis, PostgreSQL and PgBouncer on free 127.0.0.1 ports in a
# temporary directory, runs ctest against them and stops them again.
#
#   ./deploy/test.sh [ctest args...]      e.g. -L unit, -R persistence, -j2
#
# The Release build treats warnings as errors (POSTD_WERROR). Checks on the
# sources run as ctest tests labelled lint (include order, clang-format,
# luacheck). Against the same services, after the Release run:
#
# - ASan + UBSan: a second tree built by Clang (Debug at -O1, POSTD_SANITIZE=ON
#   POSTD_FUZZ=ON) runs the tests labelled unit, actors, integration and
#   persistence (see sanitized_labels); the postd binary the end-to-end
#   tests spawn is that tree's, so the server runs sanitized too. ASan, LSan
#   and UBSan reports of every process (test binaries and spawned servers
#   alike) are written to files and printed at the end; any report fails the
#   run, even from a test that passed.
# - Fuzzing: the same tree builds the seven libFuzzer targets of tests/fuzz/;
#   tests/fuzz/run.sh runs each for POSTD_FUZZ_SECONDS (25) over a copy of
#   its corpus, one per core. Each target counts as one test; a crash, leak,
#   timeout or OOM is a failed one.
# - TSan: a third tree built by Clang (POSTD_TSAN=ON, -O1) runs the same
#   labels but the outage tests that mostly wait (see tsan_exclude). Its
#   reports go to files and fail the run like the others. CAF's own library is not built with TSan, so races with an actor
#   on one side are out of its sight (tests/sanitizers/tsan.supp).
#
# Suppressions (third-party code only): tests/sanitizers/{ubsan,lsan,tsan}.supp.
#
# clang-tidy (tests/lint/clang_tidy.sh, ~10 min on 2 cores) checks core/
# persistence/ actors/ http/ app/ with the Release tree's
# compile_commands.json (CMakeLists.txt always exports it); it counts as one
# test in the summary: a finding is a failed test and fails the run.
#
# Order: the test suites mostly wait (sleeps, timeouts, the services: the
# Release suite used ~50 s of CPU in ~230 s), while the builds and clang-tidy
# keep both cores busy. So the sanitizer trees' builds and then clang-tidy
# run one after the other in the background at the lowest priority (nice 19:
# the tests' timing is not disturbed), from the start of the Release build
# on, and the suites run in the foreground as soon as their tree is built:
# Release tests, ASan tests, fuzzing, TSan tests, then the clang-tidy result.
# Each phase prints "postd: <phase> took N s"; a background step's output is
# printed when the foreground gets to it.
#
# Exits non-zero when a test fails in any run, when no test ran, when a
# sanitizer reported, when a fuzz target crashed, or when clang-tidy found
# anything. The last line printed is "N passed, F failed" summed over all
# runs, the fuzz targets and clang-tidy (", S skipped" added when some were
# skipped, ", R sanitizer reports" when there were any).
#
# Environment: POSTD_BUILD_DIR (default build/release), POSTD_ASAN_BUILD_DIR
# (default build/asan), POSTD_TSAN_BUILD_DIR (default build/tsan); a
# sanitizer tree configured by another compiler than Clang is reconfigured.
# POSTD_SKIP_SANITIZE=1 skips the ASan tree (its suite and the fuzzing),
# POSTD_SKIP_FUZZ=1 skips the fuzzing, POSTD_SKIP_TSAN=1 skips the TSan tree,
# POSTD_SKIP_TIDY=1 skips clang-tidy (CI runs them all; these are for quick
# local runs), POSTD_FUZZ_SECONDS (25) is each fuzz target's time,
# POSTD_SKIP_BUILD=1 runs the tests of the existing builds,
# POSTD_BUILD_JOBS (2) is the build, clang-tidy and fuzzing parallelism,
# POSTD_TEST_KEEP=1 keeps the temporary directory (service logs, sanitizer
# reports, background logs) after the run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib/common.sh
source deploy/lib/common.sh

build_dir=${POSTD_BUILD_DIR:-build/release}
asan_dir=${POSTD_ASAN_BUILD_DIR:-build/asan}
tsan_dir=${POSTD_TSAN_BUILD_DIR:-build/tsan}
jobs=${POSTD_BUILD_JOBS:-2}
fuzz_seconds=${POSTD_FUZZ_SECONDS:-25}
services_dir=
fg_pid=
queue_pid=
queue_dir=
summary=

# The sanitizer runs: the labels whose tests run postd's code. Not lint (the
# sources, or postd's --help-env at most), not interop (Bull's npm package
# against the enqueue and writer paths the integration tests drive there
# too: ~90 s of the ASan run), not chaos (its programs are the benchmarks',
# which the sanitizer trees do not build).
sanitized_labels='^(unit|actors|integration|persistence)$'
# The Sentinel failover tests (three redis-server, three redis-sentinel and
# minutes of load) and the multi-instance tests (three postd behind nginx)
# run in the Release suite only: what they drive in postd
# (the reconnects through Sentinel, the recovery log) the Sentinel and
# recovery-log tests also drive under ASan (and the recovery log under
# TSan), in seconds. So do the chaos kit's runs (bench/chaos.sh: minutes of
# load, the fault tests' faults; not built in the sanitizer trees). The
# descriptor-exhaustion test too: a sanitizer runtime needs descriptors of
# its own (its report file, opened at the first line it writes; pipes to
# its symbolizer), so a sanitized postd starved of them on purpose died at
# its first sanitizer line (once in ~10 ASan runs: "Can't open file ...
# (reason: 24)"); the accept back-off it checks is the Release build's.
# The dashboard's Chromium test and the real Prometheus's scrape drive a
# page and /metrics that the C++ integration tests also drive there.
# The large upload measures the server's peak RSS, which a sanitizer's
# shadow memory and quarantine (freed blocks held back) make no measure of
# postd's; the other attachment tests run there.
sanitized_exclude='FailoverTest\.|MultiInstanceTest\.|ConnectionsTest\.FileDescriptorExhaustion|AttachmentsTest\.ALargeUpload|^integration\.(dashboard|prometheus)$'
# And out of the TSan run only: the outage tests that mostly wait (Redis or
# PostgreSQL down, hung or failing over for seconds; ~220 s of the TSan
# run). What they drive runs on one actor's thread each (reconnects, retries,
# the monitors' checks) and runs under ASan and in the Release suite; the
# outage tests where threads meet stay (a deadline against a hung Redis,
# SIGTERM under load, kill -9 mid-load, actors crashing under load).
tsan_exclude="$sanitized_exclude"'|FaultTest\.(PostgresDownTenSecondsThenBack|PostgresHungKilledAndPgBouncerRestartedMidLoad|HealthFollowsOutagesAndRecoversWithoutARestart|RedisHungTenSecondsMidLoad|RedisRestartWithAofAlwaysKeepsEveryAcknowledgedJob|CallsToAHungPostgresEndAtTheirClientSideBound|RedisKilledWithTheShippedConfigKeepsEveryAcknowledgedJob)$|ReadReplicaTest\.|SentinelTest\.|PreferWaitTest\.(TheWaitOutlastsTheRequestTimeout|WhilePostgresIsDownIt202sAfterTheWait)$'

# End process group PGID (a session started by setsid: ctest or the
# background queue, and whatever they spawned): TERM, then KILL after 5 s.
stop_group() {
  local pgid=$1 i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  # Neither a second Ctrl-C nor a closed stdout/stderr (`test.sh | tee log`
  # ended with the Ctrl-C) may cut the clean-up short.
  trap '' INT TERM PIPE
  [[ -z $fg_pid ]] || stop_group "$fg_pid"
  [[ -z $queue_pid ]] || stop_group "$queue_pid"
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

# The temporary directory of the run: the services' data and logs, the
# ctest logs, the sanitizer reports and the background steps' logs.
make_services_dir() {
  services_dir=$(mktemp -d "${TMPDIR:-/tmp}/postd-test.XXXXXX")
  chmod 0755 "$services_dir"
}

start_services() {
  postd_service_user

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

# run_grouped LOG CMD...: run CMD in its own session (so it can be stopped
# as a group, whatever it spawned included); its output goes to the terminal
# and to LOG. Returns CMD's exit status.
run_grouped() {
  local log=$1 rc=0
  shift
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid -w bash -c '"$@" 2>&1 | tee "$0"; exit "${PIPESTATUS[0]}"' "$log" "$@" &
  fg_pid=$!
  wait "$fg_pid" || rc=$?
  fg_pid=
  return "$rc"
}

# run_ctest LOG DIR [VAR=value ...] -- [ctest args...]: run ctest on build
# tree DIR with the given environment (run_grouped). Returns ctest's exit
# status.
run_ctest() {
  local log=$1 dir=$2 env=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do env+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  run_grouped "$log" env "${env[@]}" \
    ctest --test-dir "$dir" --output-on-failure --timeout 600 --no-tests=error "$@"
}

# timed PHASE CMD...: run CMD, then print how long PHASE took.
timed() {
  local phase=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  printf 'postd: %s took %d s\n' "$phase" $((SECONDS - start))
  return "$rc"
}

# The background queue: CPU-bound steps (the sanitizer trees' builds,
# clang-tidy) run one after the other at the lowest priority while the
# foreground runs the test suites (see the header). queue_add NAME CMD...
# adds a step; queue_start starts them in their own session; queue_wait NAME
# waits for one. A step's output goes to $queue_dir/NAME.log, then
# "EXIT_STATUS SECONDS" to $queue_dir/NAME.status (spaces in NAME become
# dashes there); a failed step does not stop the ones after it.
queue_steps=()
queue_add() { queue_steps+=("$@" ';'); }

queue_start() {
  ((${#queue_steps[@]})) || return 0
  queue_dir=$services_dir/background
  mkdir -p "$queue_dir"
  # nice 19 alone is not enough: with autogroup scheduling
  # (kernel.sched_autogroup_enabled=1, as here) each session gets an equal
  # share of the CPU whatever its tasks' nice values, and setsid makes a
  # session. So the queue's
  # session (its autogroup) is set to nice 19 as well; measured: two busy
  # loops there got <1% of the CPU against two in another session.
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid nice -n 19 bash -c '
    echo 19 >/proc/self/autogroup 2>/dev/null || true
    dir=$1
    shift
    while (($#)); do
      name=$1 cmd=()
      shift
      while [[ $1 != ";" ]]; do cmd+=("$1"); shift; done
      shift
      start=$SECONDS rc=0
      "${cmd[@]}" >"$dir/${name// /-}.log" 2>&1 </dev/null || rc=$?
      echo "$rc $((SECONDS - start))" >"$dir/${name// /-}.status"
    done' background "$queue_dir" "${queue_steps[@]}" &
  queue_pid=$!
}

# queue_wait NAME: wait for background step NAME to end, print its output and
# how long it took; returns its exit status.
queue_wait() {
  local name=$1 status=$queue_dir/${1// /-}.status start=$SECONDS rc secs
  [[ -f $status ]] || printf 'postd: waiting for %s (background)\n' "$name"
  while [[ ! -f $status ]]; do
    # (a zombie counts as gone: the queue ended without the step)
    if ! _postd_alive "$queue_pid" && [[ ! -f $status ]]; then
      printf 'postd: %s: the background queue ended before it did\n' "$name" >&2
      return 1
    fi
    sleep 1
  done
  read -r rc secs <"$status"
  cat -- "$queue_dir/${name// /-}.log"
  printf 'postd: %s took %d s (background; waited %d s for it)\n' \
    "$name" "$secs" $((SECONDS - start))
  return "$rc"
}

# Sets sanitizer_env to the ASan/LSan/UBSan options; with a REPORT_DIR,
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

# Sets sanitizer_env to the TSan options, with reports to files in REPORT_DIR
# if given. halt_on_error=0: a process goes on after a report (and exits 66
# at the end), so one run shows every race.
tsan_options() {
  local report_dir=${1:-} log=
  [[ -z $report_dir ]] || log=:log_path=$report_dir/report:log_exe_name=1
  sanitizer_env=(
    "TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1:suppressions=$POSTD_REPO/tests/sanitizers/tsan.supp$log"
  )
}

# Sets tsan_prefix to what a TSan process needs to run under. LLVM 14's TSan
# expects an address-space layout of at most 28 bits of mmap randomisation
# (this machine's); kernels set to more (vm.mmap_rnd_bits 32, as some newer
# distributions do) make it die with "unexpected memory mapping", so there it
# runs without randomisation (setarch -R; children inherit it).
tsan_runner() {
  local bits=
  tsan_prefix=()
  read -r bits </proc/sys/vm/mmap_rnd_bits 2>/dev/null || true
  if [[ $bits =~ ^[0-9]+$ ]] && ((bits > 28)); then
    tsan_prefix=(setarch "$(uname -m)" -R)
  fi
}

# A sanitizer tree is built by Clang (the fuzz targets need libFuzzer; one
# compiler for both trees). One configured by another compiler loses its
# cache (CMake would keep the compiler, and a changed compiler on the command
# line makes it drop the other -D settings).
require_clang_tree() {
  local dir=$1 id
  [[ -f $dir/CMakeCache.txt ]] || return 0
  id=$(sed -n 's/^set(CMAKE_CXX_COMPILER_ID "\(.*\)")$/\1/p' "$dir"/CMakeFiles/*/CMakeCXXCompiler.cmake 2>/dev/null |
    head -n 1) || true
  [[ $id != Clang ]] || return 0
  printf 'postd: %s was configured by %s: reconfiguring it for Clang\n' "$dir" "${id:-another compiler}"
  rm -rf -- "$dir/CMakeCache.txt" "$dir/CMakeFiles"
}

# queue_sanitized_build NAME DIR [VAR=value ...] [RUNNER...] -- [cmake args...]:
# queue the configure and build of a sanitizer tree (Clang, Debug with line
# tables only: all a report's stack needs, and full -g made the Clang builds
# ~15% slower). What comes before -- goes between env and the build: the
# sanitizer options, and the TSan runner (tsan_prefix) if any, since
# gtest_discover_tests runs the test binaries to list their tests.
queue_sanitized_build() {
  local name=$1 dir=$2 env=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do env+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  require_clang_tree "$dir"
  # shellcheck disable=SC2016 # expanded by the inner bash
  queue_add "$name" env CXX=clang++ "${env[@]}" bash -c 'source "$0" && postd_build "$@"' \
    "$POSTD_REPO/deploy/lib/common.sh" "$dir" Debug -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only \
    -DPOSTD_BUILD_BENCH=OFF "$@"
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

# run_suite [--may-select-none] NAME DIR [VAR=value ...] [RUNNER...] --
# [ctest args...]: run the suite of build tree DIR; adds its counts to
# all_passed, all_failed, all_skipped. Fails when a test failed or none ran,
# unless --may-select-none and the arguments selected no test (the TSan run
# of, say, `-L lint`).
run_suite() {
  local may_select_none=0 name dir log ctest_rc=0 total failed skipped passed
  [[ $1 == --may-select-none ]] && { may_select_none=1; shift; }
  name=$1 dir=$2
  log=$services_dir/ctest-$name.log
  shift 2
  printf 'postd: %s tests (%s)\n' "$name" "$dir"
  run_ctest "$log" "$dir" "$@" || ctest_rc=$?
  if ((may_select_none)) && grep -q 'No tests were found' "$log"; then
    printf 'postd: %s: the arguments select no test here\n' "$name"
    return 0
  fi
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

# The fuzz targets of build tree DIR, POSTD_FUZZ_SECONDS each, one per core
# (tests/fuzz/run.sh); each target counts as one test in all_passed or
# all_failed. Fails when one crashed or the run did not finish.
run_fuzz() {
  local dir=$1 log=$services_dir/fuzz.log rc=0 line targets crashes
  printf 'postd: fuzz targets (%s, %s s each)\n' "$dir" "$fuzz_seconds"
  run_grouped "$log" env FUZZ_JOBS="$jobs" tests/fuzz/run.sh "$dir" "$fuzz_seconds" || rc=$?
  line=$(grep -E '^fuzz: [0-9]+ executions across [0-9]+ targets, [0-9]+ crashes$' "$log" | tail -n 1) || true
  if ! [[ $line =~ across\ ([0-9]+)\ targets,\ ([0-9]+)\ crashes ]]; then
    printf 'postd: fuzz: the run did not finish (exit %s)\n' "$rc" >&2
    all_failed=$((all_failed + 1))
    return 1
  fi
  targets=${BASH_REMATCH[1]} crashes=${BASH_REMATCH[2]}
  all_passed=$((all_passed + targets - crashes))
  all_failed=$((all_failed + crashes))
  if ((rc != 0 || crashes != 0)); then
    printf 'postd: fuzz: %s of %s targets failed (exit %s), see above\n' "$crashes" "$targets" "$rc" >&2
    return 1
  fi
}

# show_sanitizer_reports NAME DIR: print the sanitizer reports in DIR on
# stderr; adds their number to reports, fails if there was one. A file
# holding nothing but "WARNING: Symbolizer buffer too small" lines is no
# report: LLVM 14's runtimes log that when llvm-symbolizer's answer for one
# of Beast's long template names does not fit (TSan symbolizes every stack to
# match its suppressions), and only that frame loses its name.
show_sanitizer_reports() {
  local name=$1 dir=$2 f n=0 text
  for f in "$dir"/report.*; do
    [[ -e $f ]] || continue
    text=$(grep -vE '^==([^=]+==)?[0-9]+==WARNING: Symbolizer buffer too small$' "$f") || true
    [[ -n $text ]] || continue
    n=$((n + 1))
    printf 'postd: %s sanitizer report %s:\n' "$name" "${f##*/}" >&2
    printf '%s\n' "$text" | sed 's/^/    /' >&2
  done
  reports=$((reports + n))
  ((n == 0)) || printf 'postd: %s: %s sanitizer report(s), see above\n' "$name" "$n" >&2
  ((n == 0))
}

main() {
  local rc=0 all_passed=0 all_failed=0 all_skipped=0 reports=0 tidy_failed=0 start=$SECONDS
  local sanitizer_env tsan_prefix may_select_none=() skip_build=${POSTD_SKIP_BUILD:-0}
  local asan=1 fuzz=1 tsan=1 tidy=1
  [[ ${POSTD_SKIP_SANITIZE:-0} != 1 ]] || asan=0 fuzz=0
  [[ ${POSTD_SKIP_FUZZ:-0} != 1 ]] || fuzz=0
  [[ ${POSTD_SKIP_TSAN:-0} != 1 ]] || tsan=0
  [[ ${POSTD_SKIP_TIDY:-0} != 1 ]] || tidy=0
  # (ctest arguments such as -L lint may leave a sanitizer run nothing)
  (($# == 0)) || may_select_none=(--may-select-none)
  postd_install_packages
  make_services_dir
  tsan_runner

  # Background: the sanitizer trees, then clang-tidy (see the header). They
  # start with the Release build, taking whatever CPU it leaves (its links,
  # its last sources); clang-tidy needs the Release tree configured only.
  if [[ $skip_build != 1 ]]; then
    postd_configure "$build_dir" Release -DPOSTD_WERROR=ON || return 1
    if ((asan)); then
      sanitizer_options
      queue_sanitized_build 'asan build' "$asan_dir" "${sanitizer_env[@]}" -- \
        -DPOSTD_SANITIZE=ON -DPOSTD_FUZZ=ON
    fi
    if ((tsan)); then
      tsan_options
      queue_sanitized_build 'tsan build' "$tsan_dir" "${sanitizer_env[@]}" "${tsan_prefix[@]}" -- \
        -DPOSTD_TSAN=ON
    fi
  fi
  ((tidy == 0)) || queue_add clang-tidy tests/lint/clang_tidy.sh "$build_dir" "$jobs"
  queue_start

  if [[ $skip_build != 1 ]]; then
    timed 'release build' cmake --build "$build_dir" -j "$jobs" ||
      { printf 'postd: build failed in %s\n' "$build_dir" >&2; return 1; }
  fi
  start_services
  timed 'release tests' run_suite release "$build_dir" -- "$@" || rc=1

  if ((asan)); then
    if [[ $skip_build == 1 ]] || queue_wait 'asan build'; then
      mkdir -p "$services_dir/asan-reports"
      sanitizer_options "$services_dir/asan-reports"
      timed 'asan tests' run_suite "${may_select_none[@]}" asan "$asan_dir" "${sanitizer_env[@]}" -- \
        -L "$sanitized_labels" -E "$sanitized_exclude" "$@" || rc=1
      show_sanitizer_reports asan "$services_dir/asan-reports" || rc=1
      if ((fuzz)); then
        timed fuzzing run_fuzz "$asan_dir" || rc=1
      fi
    else
      printf 'postd: asan build failed, see above\n' >&2
      rc=1
    fi
  fi

  if ((tsan)); then
    if [[ $skip_build == 1 ]] || queue_wait 'tsan build'; then
      mkdir -p "$services_dir/tsan-reports"
      tsan_options "$services_dir/tsan-reports"
      timed 'tsan tests' run_suite "${may_select_none[@]}" tsan "$tsan_dir" "${sanitizer_env[@]}" \
        "${tsan_prefix[@]}" -- -L "$sanitized_labels" -E "$tsan_exclude" "$@" || rc=1
      show_sanitizer_reports tsan "$services_dir/tsan-reports" || rc=1
    else
      printf 'postd: tsan build failed, see above\n' >&2
      rc=1
    fi
  fi

  if ((tidy)); then
    printf 'postd: clang-tidy (%s)\n' "$build_dir"
    if queue_wait clang-tidy; then
      all_passed=$((all_passed + 1))
    else
      printf 'postd: clang-tidy failed, see above\n' >&2
      all_failed=$((all_failed + 1))
      tidy_failed=1
      rc=1
    fi
  fi

  printf 'postd: everything took %d s\n' $((SECONDS - start))
  summary="$all_passed passed, $all_failed failed"
  ((all_skipped == 0)) || summary+=", $all_skipped skipped"
  ((reports == 0)) || summary+=", $reports sanitizer reports"
  ((tidy_failed == 0)) || summary="postd: clang-tidy had findings (1 failed)"$'\n'"$summary"
  return "$rc"
}

main "$@"
