#!/usr/bin/env bash
# deploy/prometheus/ and deploy/grafana/postd.json against a real Prometheus
# (Debian's `prometheus` package) scraping a live postd, run by ctest as
# integration.prometheus:
#
#   prometheus_test.sh POSTD_BINARY
#
# 1. A postd (WRITERS=2, FAULTS=on, THROTTLE_LIMIT=6) on the services ctest
#    provides (POSTD_TEST_*: its own scratch database and queue), on a free
#    127.0.0.1 port.
# 2. Prometheus on a free 127.0.0.1 port, a temporary storage directory,
#    running deploy/prometheus/prometheus.yml as it is but for a 1 s scrape
#    and evaluation interval, the postd job's targets (this postd) and the
#    rule file's path (deploy/prometheus/alerts.yml).
# 3. Traffic once the postd target is up: creates answered 202 (persisted by
#    the writers), a fault put in force (enqueue_error_rate 1) and creates
#    answered 503 (in two scrapes, so their rate is not 0), creates answered 429.
# 4. Through Prometheus's HTTP API: every series of postd's /metrics is there
#    with postd's labels plus job="postd" and instance="127.0.0.1:PORT"
#    (e.g. http_requests_total{route,method,status}, postd_queue_jobs{state}
#    with all five states, postd_dependency_up{dependency} at 1 for redis
#    and postgres, postd_writers_configured 2, postd_redis_ack_replicas 0,
#    postd_redis_replicas_online 0, postd_fault_active{fault} at 1 for the fault);
#    every query of the Grafana dashboard ($job, $instance, $__rate_interval
#    substituted) evaluates through /api/v1/query without error or warning
#    and returns series; its $job/$instance variables find this target; every
#    alert of alerts.yml is loaded and evaluates with health "ok".
# 5. Alerts on live data: PostdFaultInjected fires for the fault, PostdHigh503Rate
#    and PostdFaultApiEnabled are pending, no other alert is active
#    (PostdCreateLatencyHigh and PostdInstanceDown pending are tolerated: a
#    loaded machine, a slow scrape); then, postd stopped, PostdInstanceDown
#    goes pending for its instance and the fault alerts end (PostdHigh503Rate,
#    over 5 minutes, may stay pending).
#
# Stops and removes all it started, also on failure (trap). Takes ~15 s (5 of
# them Prometheus's first target update).
set -euo pipefail

postd_bin=${1:?usage: prometheus_test.sh POSTD_BINARY}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
checker=$repo/tests/lint/prometheus_check.py
# shellcheck source=tests/support/shell_test.sh
source "$repo/tests/support/shell_test.sh"
ptest_init prometheus-it

start=$SECONDS
# say MESSAGE...: ptest_say after the seconds since the start.
say() { ptest_say "$(printf '[%2d s]' "$((SECONDS - start))") $*"; }

ptest_require_services POSTD_TEST_REDIS_HOST POSTD_TEST_REDIS_PORT POSTD_TEST_PG_HOST POSTD_TEST_PG_PORT \
  POSTD_TEST_PG_USER
[[ -x $postd_bin ]] || ptest_die "postd binary $postd_bin is not executable"
postd_bin=$(realpath -- "$postd_bin")
for cmd in prometheus promtool curl psql redis-cli; do
  command -v "$cmd" >/dev/null 2>&1 || ptest_die "$cmd is not installed (apt-get install prometheus curl postgresql-client redis-tools)"
done
python=$(ptest_python_yaml)
# shellcheck source=deploy/lib/common.sh
source "${POSTD_TEST_LIB:-$repo/deploy/lib/common.sh}" # postd_free_port

work=$(mktemp -d "${TMPDIR:-/tmp}/postd-prometheus-it.XXXXXX")
suffix="$$-$RANDOM"
db=postd_promit_${suffix//-/_}
queue=promit-$suffix
admin_token=prometheus-it-admin-$suffix
db_created=0
postd_pid=
postd_port=
postd_log=$work/postd.log
prom_pid=
prom_log=$work/prometheus.log

# cleanup STATUS, at exit.
cleanup() {
  (($1 == 0)) || ptest_tail_logs 15 "$postd_log" "$prom_log"
  ptest_stop_pid "$prom_pid" prometheus
  ptest_stop_pid "$postd_pid" postd
  ptest_delete_queue_keys "$queue" 2>/dev/null
  ((db_created)) && ptest_drop_database "$db"
  rm -rf -- "$work"
}
ptest_on_exit cleanup

# ---------------------------------------------------------------- Prometheus's API, in Python

# api.py COMMAND PROM_URL ARGS...: waits and assertions on Prometheus's HTTP
# API; exits 1 with a message on stderr when one does not hold.
cat >"$work/api.py" <<'PY'
import json, sys, time, urllib.parse, urllib.request
import yaml

def fail(msg):
    print(f"prometheus-it: {msg}", file=sys.stderr)
    sys.exit(1)

def note(msg):
    print(f"prometheus-it: {msg}", flush=True)

def api(prom, path, **params):
    url = f"{prom}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    except (OSError, ValueError) as e:
        fail(f"GET {url}: {e}")
    if body.get("status") != "success":
        fail(f"GET {url}: {body.get('errorType')}: {body.get('error')}")
    return body

def query(prom, expr):
    return api(prom, "query", query=expr)

def poll(timeout, what, check):
    """check() returns None when it holds, else why not; retried until timeout."""
    deadline = time.monotonic() + float(timeout)
    while True:
        why = check()
        if why is None:
            return
        if time.monotonic() > deadline:
            fail(f"{what} within {timeout} s: {why}")
        time.sleep(0.25)

def values(prom, expr):
    return [(s["metric"], float(s["value"][1])) for s in query(prom, expr)["data"]["result"]]

def read_exposition(path):
    """{(name, frozenset(labels))} of a /metrics text."""
    import re
    out = set()
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+", line)
        labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or "")
        out.add((m.group(1), frozenset(labels)))
    return out

def cmd_wait(prom, expr, minimum, timeout):
    def check():
        v = values(prom, expr)
        if not v:
            return f"{expr} has no series"
        if min(x for _, x in v) < float(minimum):
            return f"{expr} = {[x for _, x in v]}"
        return None
    poll(timeout, f"{expr} did not reach {minimum}", check)

def cmd_series(prom, instance, metrics_txt, timeout):
    want = read_exposition(metrics_txt)
    extra = {("job", "postd"), ("instance", instance)}
    def check():
        got = set()
        for s in api(prom, "series", **{"match[]": f'{{job="postd",instance="{instance}"}}'})["data"]:
            name = s.pop("__name__")
            got.add((name, frozenset(s.items())))
        missing = [f"{n}{{{','.join(f'{k}={v!r}' for k, v in sorted(l | extra))}}}"
                   for n, l in want if (n, l | extra) not in got]
        return f"{len(missing)} series missing, e.g. {missing[:3]}" if missing else None
    poll(timeout, "postd's series did not all reach Prometheus with job and instance", check)
    note(f"all {len(want)} series of postd's /metrics are in Prometheus with job=\"postd\", instance=\"{instance}\"")

def cmd_labels(prom, instance):
    sel = f'job="postd",instance="{instance}"'
    def expect(expr, want, what):
        got = {tuple(sorted((k, v) for k, v in m.items() if k != "__name__")): x for m, x in values(prom, expr)}
        for labels, value in want.items():
            key = tuple(sorted(labels + (("instance", instance), ("job", "postd"))))
            if key not in got:
                fail(f"{what}: no series {dict(key)} (got {list(got)})")
            if value is not None and got[key] != value:
                fail(f"{what}: {dict(key)} = {got[key]}, expected {value}")
    expect(f'http_requests_total{{{sel},route="/v1/post/create"}}',
           {(("route", "/v1/post/create"), ("method", "POST"), ("status", s)): None
            for s in ("202", "503", "429")}, "http_requests_total{route,method,status}")
    expect(f'http_request_duration_seconds_count{{{sel},route="/v1/post/create"}}',
           {(("route", "/v1/post/create"), ("status", "202")): None}, "http_request_duration_seconds{route,status}")
    expect(f"postd_queue_jobs{{{sel}}}",
           {(("state", s),): None for s in ("waiting", "active", "delayed", "completed", "failed")},
           "postd_queue_jobs{state}")
    expect(f"postd_dependency_up{{{sel}}}",
           {(("dependency", "redis"),): 1.0, (("dependency", "postgres"),): 1.0}, "postd_dependency_up{dependency}")
    expect(f"postd_writers_configured{{{sel}}}", {(): 2.0}, "postd_writers_configured")
    expect(f"postd_writers_running{{{sel}}}", {(): 2.0}, "postd_writers_running")
    expect(f"postd_redis_ack_replicas{{{sel}}}", {(): 0.0}, "postd_redis_ack_replicas")
    expect(f"postd_redis_replicas_online{{{sel}}}", {(): 0.0}, "postd_redis_replicas_online")
    expect(f'postd_fault_active{{{sel},fault="enqueue_error_rate"}}',
           {(("fault", "enqueue_error_rate"),): 1.0}, "postd_fault_active{fault}")
    expect(f'postd_actor_running{{{sel},actor="writers"}}', {(("actor", "writers"),): 1.0},
           "postd_actor_running{actor}")
    note("labels and values as expected: http_requests_total{route,method,status}, postd_queue_jobs{state}, "
          "postd_dependency_up{dependency}, postd_fault_active{fault}, postd_actor_running{actor}, "
          "the writers and replica gauges")

def cmd_grafana(prom, queries_jsonl, instance):
    n = 0
    for line in open(queries_jsonl):
        q = json.loads(line)
        r = query(prom, q["expr"])
        where = f"grafana panel {q['panel']!r} query {q['refId']}"
        if r.get("warnings"):
            fail(f"{where}: warnings {r['warnings']}: {q['expr']}")
        result = r["data"]["result"]
        if not result:
            fail(f"{where}: no series: {q['expr']}")
        n += 1
    jobs = api(prom, "label/job/values", **{"match[]": "postd_uptime_seconds"})["data"]
    if "postd" not in jobs:
        fail(f"grafana variable job: label_values(postd_uptime_seconds, job) = {jobs}, without postd")
    insts = api(prom, "label/instance/values", **{"match[]": 'postd_uptime_seconds{job="postd"}'})["data"]
    if instance not in insts:
        fail(f"grafana variable instance: {insts}, without {instance}")
    note(f"all {n} Grafana queries evaluate with series; $job and $instance find this target")

def cmd_rules(prom, alerts_yml, timeout):
    want = {r["alert"] for g in yaml.safe_load(open(alerts_yml))["groups"] for r in g["rules"] if "alert" in r}
    def check():
        got = {}
        for g in api(prom, "rules", type="alert")["data"]["groups"]:
            for r in g["rules"]:
                got[r["name"]] = r
        if want - set(got):
            return f"not loaded: {sorted(want - set(got))}"
        bad = {n: (r.get("health"), r.get("lastError")) for n, r in got.items() if r.get("health") != "ok"}
        return f"not evaluated ok: {bad}" if bad else None
    poll(timeout, "the alerting rules were not all loaded and evaluated ok", check)
    note(f"all {len(want)} alerts of {alerts_yml.rsplit('/', 1)[-1]} loaded and evaluated with health ok")

def cmd_alerts(prom, instance, timeout, *expected):
    """expected: NAME=state[|state] (must be so for this instance) or
    ~NAME=state[|state] (may be so); every other alert inactive.
    PostdCreateLatencyHigh may always be pending (a loaded machine)."""
    want = {}
    tolerated = {"PostdCreateLatencyHigh": {"pending"}}
    for e in expected:
        name, states = e.split("=")
        if name.startswith("~"):
            tolerated[name[1:]] = set(states.split("|"))
        else:
            want[name] = set(states.split("|"))
    def check():
        active = {}
        for a in api(prom, "alerts")["data"]["alerts"]:
            active.setdefault(a["labels"]["alertname"], []).append(a)
        for name, states in want.items():
            mine = [a for a in active.get(name, []) if a["labels"].get("instance") in (instance, None)]
            if not any(a["state"] in states for a in mine):
                return f"{name} is {[a['state'] for a in mine] or 'inactive'}, expected {'|'.join(sorted(states))}"
        for name, alerts in active.items():
            if name in want:
                continue
            if all(a["state"] in tolerated.get(name, ()) for a in alerts):
                continue
            return f"{name} is {alerts[0]['state']} ({alerts[0]['labels']}), not expected"
        return None
    poll(timeout, "the alerts were not as expected", check)
    firing = [a for a in api(prom, "alerts")["data"]["alerts"]]
    note("alerts: " + ", ".join(sorted(f"{a['labels']['alertname']} {a['state']}"
                                        + (f" ({a['labels']['fault']})" if "fault" in a["labels"] else "")
                                        for a in firing)))

commands = {"wait": cmd_wait, "series": cmd_series, "labels": cmd_labels, "grafana": cmd_grafana,
            "rules": cmd_rules, "alerts": cmd_alerts}
commands[sys.argv[1]](*sys.argv[2:])
PY
api() { "$python" "$work/api.py" "$@"; }

# ---------------------------------------------------------------- postd

postd_env=(
  "DATABASE_URL=postgresql://$POSTD_TEST_PG_USER@$POSTD_TEST_PG_HOST:$POSTD_TEST_PG_PORT/$db"
  "REDIS_HOST=$POSTD_TEST_REDIS_HOST" "REDIS_PORT=$POSTD_TEST_REDIS_PORT"
  "JWT_SECRET=prometheus-it-secret-$suffix" "QUEUE_NAME=$queue" "QUEUE_PREFIX=bull"
  "WRITERS=2" "FAULTS=on" "ADMIN_TOKEN=$admin_token" "THROTTLE_LIMIT=6" "THROTTLE_TTL=120000"
  "HOST=127.0.0.1" "PORT=0" "LOG_LEVEL=info" "LOG_FORMAT=json"
)

ptest_psql postgres -c "CREATE DATABASE \"$db\"" >/dev/null || ptest_die "cannot create database $db"
db_created=1
env "${postd_env[@]}" timeout --foreground 60 "$postd_bin" migrate >"$work/migrate.log" 2>&1 ||
  { sed 's/^/    /' "$work/migrate.log" >&2; ptest_die "postd migrate failed"; }

# PORT=0: postd binds a free port and names it in its start log line.
env "${postd_env[@]}" "$postd_bin" serve >"$postd_log" 2>&1 &
postd_pid=$!
ptest_wait_logged_port postd_port "$postd_pid" "$postd_log" 20 || ptest_die "postd exited at start"
postd_url=http://127.0.0.1:$postd_port
# /health answers 200 once both dependencies were checked up.
ptest_wait_http postd "$postd_pid" "$postd_url/health" 20 || ptest_die "postd exited at start"
instance=127.0.0.1:$postd_port
say "postd serves $postd_url (database $db, queue bull:$queue)"

# ---------------------------------------------------------------- Prometheus

"$python" "$checker" test-config "$repo/deploy/prometheus/prometheus.yml" "$work/prometheus.yml" \
  "$instance" "$repo/deploy/prometheus/alerts.yml" || ptest_die "cannot render the test's prometheus.yml"
promtool check config "$work/prometheus.yml" >"$work/check.log" 2>&1 ||
  { sed 's/^/    /' "$work/check.log" >&2; ptest_die "promtool check config refuses the test's prometheus.yml"; }
for ((try = 1; try <= 3; try++)); do
  prom_port=$(postd_free_port)
  prom_url=http://127.0.0.1:$prom_port
  rm -rf -- "$work/data"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$prom_log" 2>&1 &
  prom_pid=$!
  ptest_wait_http Prometheus "$prom_pid" "$prom_url/-/ready" 30 && break
  prom_pid=
  grep -qi 'address already in use' "$prom_log" || ptest_die "Prometheus exited at start"
done
[[ -n $prom_pid ]] || ptest_die "Prometheus found no free port in 3 tries"
say "Prometheus $(prometheus --version 2>&1 | head -n 1 | cut -d' ' -f3) ready on $prom_url, scraping $instance every second"
api wait "$prom_url" "up{job=\"postd\",instance=\"$instance\"}" 1 20 || ptest_die "Prometheus did not scrape postd"

# ---------------------------------------------------------------- traffic

token=$(env "${postd_env[@]}" "$postd_bin" token --sub prometheus-it) || ptest_die "postd token failed"
# create EXPECTED_STATUS
create() {
  local status
  status=$(curl -sS -m 10 -o "$work/create.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary "{\"content\":\"prometheus integration $RANDOM\"}" "$postd_url/v1/post/create") ||
    ptest_die "POST /v1/post/create: curl failed"
  [[ $status == "$1" ]] || ptest_die "POST /v1/post/create answered $status, expected $1: $(cat "$work/create.json")"
}
for _ in 1 2 3 4; do create 202; done
api wait "$prom_url" "postd_jobs_completed_total{instance=\"$instance\"}" 4 20 ||
  ptest_die "the writers' completions did not reach Prometheus"
status=$(curl -sS -m 10 -o "$work/fault.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $admin_token" \
  -H 'Content-Type: application/json' -d '{"enqueue_error_rate":1,"for":300}' "$postd_url/admin/faults") ||
  ptest_die "PUT /admin/faults: curl failed"
[[ $status == 200 ]] || ptest_die "PUT /admin/faults answered $status: $(cat "$work/fault.json")"
create 503
# A counter's first sample is no increase: a second 503 after Prometheus saw the first.
api wait "$prom_url" "http_requests_total{instance=\"$instance\",route=\"/v1/post/create\",status=\"503\"}" 1 10 ||
  ptest_die "the first 503 did not reach Prometheus"
create 503
create 429 # THROTTLE_LIMIT=6: the seventh and eighth create of the window
create 429
api wait "$prom_url" "http_requests_total{instance=\"$instance\",route=\"/v1/post/create\",status=\"429\"}" 2 10 ||
  ptest_die "the 429s did not reach Prometheus"
say "traffic: 4 creates answered 202 and persisted, 2 answered 503 (fault enqueue_error_rate), 2 answered 429"

# ---------------------------------------------------------------- checks

curl -fsS -m 10 -o "$work/metrics.txt" "$postd_url/metrics" || ptest_die "GET /metrics failed"
api series "$prom_url" "$instance" "$work/metrics.txt" 10 || ptest_die "postd's series in Prometheus"
api labels "$prom_url" "$instance" || ptest_die "postd's labels in Prometheus"
"$python" "$checker" grafana-queries "$repo/deploy/grafana/postd.json" "$repo/deploy/prometheus/prometheus.yml" \
  >"$work/queries.jsonl" || ptest_die "cannot read the Grafana dashboard's queries"
api grafana "$prom_url" "$work/queries.jsonl" "$instance" || ptest_die "the Grafana dashboard's queries"
api rules "$prom_url" "$repo/deploy/prometheus/alerts.yml" 10 || ptest_die "the alerting rules in Prometheus"
# PostdInstanceDown may be pending after a scrape that missed its 1 s
# timeout (a loaded machine, a sanitizer build); it must not fire.
api alerts "$prom_url" "$instance" 15 PostdFaultInjected=firing 'PostdFaultApiEnabled=pending|firing' \
  PostdHigh503Rate=pending '~PostdInstanceDown=pending' || ptest_die "the alerts on a live postd"

ptest_stop_pid "$postd_pid" postd
postd_pid=
# The 503 rate is over 5 minutes: its samples stay in the window.
api alerts "$prom_url" "$instance" 15 PostdInstanceDown=pending '~PostdHigh503Rate=pending' ||
  ptest_die "the alerts once postd stopped"
say "passed ($((SECONDS - start)) s)"
