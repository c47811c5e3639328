# shellcheck shell=bash
# Shared helpers of the shell tests that run a postd against real services
# (tests/interop/bull_interop.sh, tests/lint/prometheus.sh,
# tests/integration/prometheus_test.sh, tests/integration/dashboard_test.sh).
#
# Source it from bash running with `set -euo pipefail`: sourcing only defines
# functions. Call `ptest_init NAME` first: messages start with "NAME: ".
# Services shared by the tests are those deploy/test.sh exports (POSTD_TEST_*);
# free ports and private Redis / PostgreSQL come from deploy/lib/common.sh.

# ptest_init NAME: the prefix of this test's messages.
ptest_init() { _ptest_name=$1; }

# ptest_say MESSAGE...: "NAME: MESSAGE" on stdout.
ptest_say() { printf '%s: %s\n' "${_ptest_name:?ptest_init NAME first}" "$*"; }

# ptest_die MESSAGE...: "NAME: FAILED: MESSAGE" on stderr, then exit 1.
ptest_die() {
  ptest_say "FAILED: $*" >&2
  exit 1
}

# ptest_require_services VAR...: each POSTD_TEST_* VAR is set, each *_HOST one to 127.0.0.1.
ptest_require_services() {
  local var
  for var in "$@"; do
    [[ -n ${!var:-} ]] ||
      ptest_die "$var is not set (run through ctest under deploy/test.sh, which starts the services)"
  done
  for var in "$@"; do
    [[ $var != *_HOST || ${!var} == 127.0.0.1 || ${!var} == localhost ]] ||
      ptest_die "$var=${!var}: this test only targets 127.0.0.1"
  done
}

# ptest_python_yaml: print a python3 that has yaml (Debian's first: it starts faster than a shim), or die.
ptest_python_yaml() {
  local py
  for py in /usr/bin/python3 python3; do
    if "$py" -c 'import yaml' 2>/dev/null; then
      printf '%s\n' "$py"
      return 0
    fi
  done
  ptest_die "no python3 with yaml (apt-get install python3 python3-yaml)"
}

# ptest_psql DB ARGS...: psql -X -q, no password prompt, stopping on error, on DB of the shared PostgreSQL.
ptest_psql() {
  local db=$1
  shift
  PGCONNECT_TIMEOUT=5 psql -X -q -w -v ON_ERROR_STOP=1 -h "$POSTD_TEST_PG_HOST" -p "$POSTD_TEST_PG_PORT" \
    -U "$POSTD_TEST_PG_USER" -d "$db" "$@"
}

# ptest_drop_database DB: drop the scratch database DB (sessions and all); only a message if that fails.
ptest_drop_database() {
  ptest_psql postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 ||
    ptest_say "could not drop database $1" >&2
}

# ptest_delete_queue_keys QUEUE: delete every bull:QUEUE:* key on the shared Redis, and only those.
ptest_delete_queue_keys() {
  local cli=(redis-cli -h "$POSTD_TEST_REDIS_HOST" -p "$POSTD_TEST_REDIS_PORT")
  "${cli[@]}" --scan --pattern "bull:$1:*" | xargs -r -n 500 "${cli[@]}" del >/dev/null
}

# ptest_wait_http NAME PID URL SECONDS: wait until GET URL succeeds; false if PID exits first; dies after SECONDS.
ptest_wait_http() {
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + $4))
  until curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || ptest_die "$name did not answer GET $url within $4 s"
    sleep 0.1
  done
}

# ptest_wait_logged_port VAR PID LOG SECONDS: VAR = the port postd (PORT=0) logs in LOG; as ptest_wait_http.
ptest_wait_logged_port() {
  local _ptest_port='' _ptest_deadline=$((SECONDS + $4))
  until _ptest_port=$(grep -F '"postd listening"' "$3" | grep -o '"port":[0-9]*' | head -n 1 | cut -d: -f2) &&
    [[ -n $_ptest_port ]]; do
    kill -0 "$2" 2>/dev/null || return 1
    ((SECONDS < _ptest_deadline)) || ptest_die "postd named no port in ${3##*/} within $4 s"
    sleep 0.1
  done
  printf -v "$1" '%s' "$_ptest_port"
}

# ptest_stop_pid PID NAME: stop our child PID (none if empty): TERM, up to 15 s, then KILL; reaps it.
ptest_stop_pid() {
  local pid=$1 name=$2 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    ptest_say "$name (pid $pid) ignored SIGTERM for 15 s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ptest_tail_logs LINES FILE...: the last LINES lines of each non-empty FILE, indented, on stderr.
ptest_tail_logs() {
  local lines=$1 file
  shift
  for file in "$@"; do
    [[ -s $file ]] || continue
    ptest_say "last lines of ${file##*/}:" >&2
    tail -n "$lines" "$file" | sed 's/^/    /' >&2
  done
}

# ptest_on_exit CLEANUP: at exit (INT: 130, TERM: 143) run `CLEANUP STATUS` to its end, then exit STATUS.
ptest_on_exit() {
  _ptest_cleanup=$1
  trap _ptest_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
# The EXIT trap: CLEANUP runs with INT and TERM ignored and set -e off (each step runs).
_ptest_exit() {
  local rc=$?
  trap '' INT TERM
  "$_ptest_cleanup" "$rc" || true
  exit "$rc"
}
