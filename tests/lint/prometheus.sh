#!/usr/bin/env bash
# Checks the Prometheus and Grafana kit (deploy/prometheus/, deploy/grafana/postd.json),
# run by ctest as lint.prometheus:
#
#   1. `promtool check config` of prometheus.yml (with the rule files it loads),
#      `promtool check rules` of alerts.yml, `promtool test rules` of alerts_test.yml;
#   2. every alert of alerts.yml has a unit test where it fires and one where it
#      does not, a severity, a summary and a description;
#   3. the dashboard's shape (data source variable, $job and $instance, panel
#      ids and positions, the series it must show) and every one of its
#      queries parsed by `promtool check rules` (as recording rules);
#   4. against the truth: a postd (POSTD_BINARY) on the services ctest provides
#      (POSTD_TEST_*: its own scratch database and queue, FAULTS=on) answers a
#      few requests (creates persisted by its writers, a 400, health routes) so
#      that every family has samples; then every metric name, label name
#      (selectors, by/without/on, legends, $labels in annotations) and fixed
#      label value (state, dependency, actor, fault, route) the rules and the
#      dashboard's queries use must be on its /metrics, and job="..." must be
#      a job of prometheus.yml.
#
# With --self-test (ctest: lint.prometheus_refuses_a_misspelt_metric) it
# proves these checks refuse what they must: the kit as it is passes, and
# copies of it with a misspelt metric (in the dashboard, in a rule), a
# misspelt label, a misspelt label value, an unparsable query, an alert
# without tests and a broken threshold are each refused, naming the fault.
#
#   tests/lint/prometheus.sh POSTD_BINARY
#   tests/lint/prometheus.sh --self-test POSTD_BINARY
#
# Everything it starts listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

self_test=0
if [[ ${1:-} == --self-test ]]; then
  self_test=1
  shift
fi
postd_bin=${1:?usage: prometheus.sh [--self-test] POSTD_BINARY}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
checker=$repo/tests/lint/prometheus_check.py
# shellcheck source=tests/support/shell_test.sh
source "$repo/tests/support/shell_test.sh"
ptest_init prometheus

for cmd in promtool curl psql; do
  command -v "$cmd" >/dev/null 2>&1 || ptest_die "$cmd is not installed (apt-get install prometheus curl postgresql-client)"
done
python=$(ptest_python_yaml)
[[ -x $postd_bin ]] || ptest_die "postd binary $postd_bin is not executable"
postd_bin=$(realpath -- "$postd_bin")
ptest_require_services POSTD_TEST_REDIS_HOST POSTD_TEST_REDIS_PORT POSTD_TEST_PG_HOST POSTD_TEST_PG_PORT \
  POSTD_TEST_PG_USER

work=$(mktemp -d "${TMPDIR:-/tmp}/postd-prometheus-lint.XXXXXX")
suffix="$$-$RANDOM"
db=postd_promlint_${suffix//-/_}
queue=promlint-$suffix
db_created=0
postd_pid=
postd_log=$work/postd.log

stop_postd() {
  ptest_stop_pid "$postd_pid" postd
  postd_pid=
}

# cleanup STATUS, at exit.
cleanup() {
  # The postd log helps when the failure came while postd ran.
  [[ $1 == 0 || -z $postd_pid ]] || ptest_tail_logs 20 "$postd_log"
  stop_postd
  ptest_delete_queue_keys "$queue" 2>/dev/null # redis-cli is optional here
  ((db_created)) && ptest_drop_database "$db"
  rm -rf -- "$work"
}
ptest_on_exit cleanup

# ---------------------------------------------------------------- the checks

# static_checks PROM_DIR GRAFANA_JSON: steps 1 to 3 on these files.
static_checks() {
  local dir=$1 grafana=$2
  promtool check config "$dir/prometheus.yml" >/dev/null || {
    promtool check config "$dir/prometheus.yml" >&2 || true
    ptest_say "promtool check config $dir/prometheus.yml failed" >&2
    return 1
  }
  promtool check rules "$dir/alerts.yml" >/dev/null 2>&1 || {
    promtool check rules "$dir/alerts.yml" >&2 || true
    ptest_say "promtool check rules $dir/alerts.yml failed" >&2
    return 1
  }
  # promtool prints a case's failure on stdout: keep it for the message.
  if ! promtool test rules "$dir/alerts_test.yml" >"$work/unit.log" 2>&1; then
    sed 's/^/    /' "$work/unit.log" >&2
    ptest_say "promtool test rules $dir/alerts_test.yml failed" >&2
    return 1
  fi
  "$python" "$checker" coverage "$dir/alerts.yml" "$dir/alerts_test.yml" >/dev/null || return 1
  "$python" "$checker" grafana-rules "$grafana" "$dir/prometheus.yml" "$work/grafana-rules.yml" >/dev/null ||
    return 1
  promtool check rules "$work/grafana-rules.yml" >/dev/null 2>&1 || {
    promtool check rules "$work/grafana-rules.yml" >&2 || true
    ptest_say "a query of $grafana does not parse (promtool check rules on its queries)" >&2
    return 1
  }
}

# names_check PROM_DIR GRAFANA_JSON: step 4 against the scrape in $work/metrics.txt.
names_check() {
  "$python" "$checker" names "$work/metrics.txt" "$1/prometheus.yml" "$1/alerts.yml" "$2" >/dev/null
}

# ---------------------------------------------------------------- a live postd

# postd_env: the environment of a postd on our queue and database.
postd_env=(
  "DATABASE_URL=postgresql://$POSTD_TEST_PG_USER@$POSTD_TEST_PG_HOST:$POSTD_TEST_PG_PORT/$db"
  "REDIS_HOST=$POSTD_TEST_REDIS_HOST" "REDIS_PORT=$POSTD_TEST_REDIS_PORT"
  "JWT_SECRET=prometheus-lint-secret-$suffix" "QUEUE_NAME=$queue" "QUEUE_PREFIX=bull"
  "WRITERS=2" "FAULTS=on" "ADMIN_TOKEN=prometheus-lint-admin-$suffix"
  "HOST=127.0.0.1" "PORT=0" "LOG_LEVEL=info" "LOG_FORMAT=json"
)

# start_postd: serve on a free port (PORT=0, read from the start log line)
# until /health/queue answers; sets postd_url.
start_postd() {
  local port
  env "${postd_env[@]}" "$postd_bin" serve >"$postd_log" 2>&1 &
  postd_pid=$!
  ptest_wait_logged_port port "$postd_pid" "$postd_log" 20 || ptest_die "postd exited at start"
  postd_url=http://127.0.0.1:$port
  ptest_wait_http postd "$postd_pid" "$postd_url/health/queue" 20 || ptest_die "postd exited at start"
}

# scrape_live_postd: a postd with traffic behind every family; its /metrics
# in $work/metrics.txt.
scrape_live_postd() {
  local token status i completed deadline
  ptest_psql postgres -c "CREATE DATABASE \"$db\"" >/dev/null || ptest_die "cannot create database $db"
  db_created=1
  env "${postd_env[@]}" timeout --foreground 60 "$postd_bin" migrate >"$work/migrate.log" 2>&1 ||
    { sed 's/^/    /' "$work/migrate.log" >&2; ptest_die "postd migrate failed"; }
  start_postd
  ptest_say "postd serves $postd_url (database $db, queue bull:$queue)"
  token=$(env "${postd_env[@]}" "$postd_bin" token --sub "prometheus-lint") || ptest_die "postd token failed"
  for ((i = 1; i <= 3; i++)); do
    status=$(curl -sS -m 10 -o "$work/create.json" -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary "{\"content\":\"prometheus lint $i\"}" "$postd_url/v1/post/create") ||
      ptest_die "POST /v1/post/create: curl failed"
    [[ $status == 202 ]] || ptest_die "POST /v1/post/create answered $status: $(cat "$work/create.json")"
  done
  status=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary '{"content":""}' "$postd_url/v1/post/create") ||
    ptest_die "POST /v1/post/create: curl failed"
  [[ $status == 400 ]] || ptest_die "POST /v1/post/create with empty content answered $status, not 400"
  for path in /health /health/queue /health/ready /health/live; do
    curl -sS -m 10 -o /dev/null "$postd_url$path" || ptest_die "GET $path: curl failed"
  done
  # Wait for the writers to persist the three (the batch histogram's samples).
  deadline=$((SECONDS + 20))
  while :; do
    curl -fsS -m 10 -o "$work/metrics.txt" "$postd_url/metrics" || ptest_die "GET /metrics failed"
    completed=$(sed -n 's/^postd_jobs_completed_total \([0-9]*\)$/\1/p' "$work/metrics.txt")
    ((${completed:-0} >= 3)) && break
    ((SECONDS < deadline)) || ptest_die "postd persisted ${completed:-0} of 3 creates within 20 s"
    sleep 0.2
  done
  curl -fsS -m 10 -o "$work/metrics.txt" "$postd_url/metrics" || ptest_die "GET /metrics failed"
  stop_postd
  ptest_say "scraped $(grep -c '^# TYPE' "$work/metrics.txt") metric families, $(grep -vc '^#' "$work/metrics.txt") samples"
}

# ---------------------------------------------------------------- main

if ((!self_test)); then
  start=$SECONDS
  static_checks "$repo/deploy/prometheus" "$repo/deploy/grafana/postd.json" ||
    ptest_die "the static checks of deploy/prometheus and deploy/grafana failed (above)"
  ptest_say "promtool check config/rules, promtool test rules, test coverage and the dashboard's queries: ok"
  scrape_live_postd
  names_check "$repo/deploy/prometheus" "$repo/deploy/grafana/postd.json" ||
    ptest_die "the rules or the dashboard name series postd does not export (above)"
  ptest_say "passed ($((SECONDS - start)) s)"
  exit 0
fi

# ---------------------------------------------------------------- --self-test

start=$SECONDS
scrape_live_postd
static_checks "$repo/deploy/prometheus" "$repo/deploy/grafana/postd.json" ||
  ptest_die "self-test: the kit as it is fails the static checks"
names_check "$repo/deploy/prometheus" "$repo/deploy/grafana/postd.json" ||
  ptest_die "self-test: the kit as it is fails the names check"
ptest_say "self-test: the kit as it is passes"

# mutant NAME FILE PYTHON_SUBSTITUTION: a copy of the kit in $work/NAME with
# FILE (relative to the kit: prometheus/... or grafana/postd.json) changed by
# replacing the first occurrence of OLD by NEW (fails if OLD is not there).
mutant() {
  local name=$1 file=$2 old=$3 new=$4 dir=$work/$1
  rm -rf -- "$dir"
  mkdir -p "$dir/prometheus" "$dir/grafana"
  cp "$repo"/deploy/prometheus/*.yml "$dir/prometheus/"
  cp "$repo/deploy/grafana/postd.json" "$dir/grafana/"
  "$python" - "$dir/$file" "$old" "$new" <<'PY' || ptest_die "self-test: cannot make mutant $name"
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if old not in text:
    sys.exit(f"{path}: {old!r} not found")
open(path, "w").write(text.replace(old, new, 1))
PY
}

# refused NAME EXPECT CHECK: CHECK (static or names) of mutant NAME must
# fail with EXPECT in its messages.
refused() {
  local name=$1 expect=$2 check=$3 dir=$work/$1 rc=0
  case $check in
    static) static_checks "$dir/prometheus" "$dir/grafana/postd.json" >"$work/out" 2>&1 || rc=$? ;;
    names) names_check "$dir/prometheus" "$dir/grafana/postd.json" >"$work/out" 2>&1 || rc=$? ;;
  esac
  if ((rc == 0)); then
    ptest_die "self-test: the $check check accepted $name"
  fi
  if ! grep -qF -- "$expect" "$work/out"; then
    sed 's/^/    /' "$work/out" >&2
    ptest_die "self-test: the $check check refused $name without naming '$expect'"
  fi
  ptest_say "self-test: $check check refuses $name: $(grep -F -m 1 -- "$expect" "$work/out" | sed 's/^ *//')"
}

mutant grafana-metric grafana/postd.json 'postd_queue_jobs{' 'postd_queue_job{'
refused grafana-metric "metric postd_queue_job is not exported" names
mutant grafana-new-gauge grafana/postd.json 'postd_redis_ack_replicas{' 'postd_redis_ack_replica{'
refused grafana-new-gauge "metric postd_redis_ack_replica is not exported" names
mutant alert-metric prometheus/alerts.yml 'postd_dependency_up == 0' 'postd_dependancy_up == 0'
refused alert-metric "metric postd_dependancy_up is not exported" names
mutant grafana-label grafana/postd.json 'max by (instance, dependency)' 'max by (instance, dependancy)'
refused grafana-label "label dependancy in by(...)" names
mutant grafana-legend grafana/postd.json '"{{instance}} {{dependency}}"' '"{{instance}} {{dependancy}}"'
refused grafana-legend "label dependancy (shown)" names
mutant alert-selector-label prometheus/alerts.yml 'postd_queue_jobs{state="failed"}' 'postd_queue_jobs{status="failed"}'
refused alert-selector-label "metric postd_queue_jobs has no label status" names
mutant alert-label-value prometheus/alerts.yml 'postd_queue_jobs{state="waiting"}' 'postd_queue_jobs{state="wating"}'
refused alert-label-value 'postd_queue_jobs{state="wating"} matches nothing' names
mutant grafana-syntax grafana/postd.json 'sum(rate(http_requests_total{' 'sum(rate(http_requests_total{{'
refused grafana-syntax "does not parse" static
mutant untested-alert prometheus/alerts.yml '      - alert: PostdInstanceDown' \
  "      - alert: PostdUntested
        expr: postd_uptime_seconds < 0
        labels:
          severity: warning
        annotations:
          summary: untested
          description: untested
      - alert: PostdInstanceDown"
refused untested-alert "no test case where PostdUntested fires" static
mutant broken-threshold prometheus/alerts.yml '(postd_queue_jobs{state="waiting"}) > 1000' \
  '(postd_queue_jobs{state="waiting"}) > 10000'
refused broken-threshold "promtool test rules" static
mutant broken-for prometheus/alerts.yml 'postd_dependency_up == 0
        for: 1m' 'postd_dependency_up == 0
        for: 5m'
refused broken-for "promtool test rules" static
ptest_say "self-test passed ($((SECONDS - start)) s)"
