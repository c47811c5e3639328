#!/usr/bin/env bash
# GET /dashboard in a real browser (headless Chromium), run by ctest as
# integration.dashboard:
#
#   dashboard_test.sh POSTD_BINARY [OUTPUT_DIR]
#
# 1. Its own Redis and PostgreSQL (it stops PostgreSQL half way, so not the
#    ones ctest shares), a migrated database and a postd (WRITERS=2) on free
#    127.0.0.1 ports. GET /dashboard answers the page the source tree holds
#    (http/dashboard/dashboard.html, byte for byte) as text/html with its
#    Content-Security-Policy.
# 2. Posts flow (curl, 50/s): Chromium loads the page and saves
#    OUTPUT_DIR/dashboard-healthy.png; no banner, and the page shows creates.
# 3. The load stopped, the queue drained, and a few failed and delayed entries
#    added to Bull's sets (so that no count is trivially 0 = 0): the queue
#    counts the page shows (waiting, active, delayed, failed, completed) match
#    GET /health/queue taken right before and right after (each equal to one
#    of them or between them), the banner is hidden and both dependencies up.
# 4. PostgreSQL stopped and /health answering 503: the page shows the banner
#    naming PostgreSQL (the database) and saves OUTPUT_DIR/dashboard-db-down.png.
#
# Chromium runs with --virtual-time-budget: the page's timers run on virtual
# time (a budget of 5000 ms is five refreshes), which only advances while no
# request is in flight; the page takes its rates' time spans from postd's
# uptime, so they stay true. Stops and removes all it started.
set -euo pipefail

postd_bin=${1:?usage: dashboard_test.sh POSTD_BINARY [OUTPUT_DIR]}
out_dir=${2:-$PWD}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
page_src=$repo/http/dashboard/dashboard.html
# shellcheck source=tests/support/shell_test.sh
source "$repo/tests/support/shell_test.sh"
ptest_init dashboard

[[ -x $postd_bin ]] || ptest_die "postd binary $postd_bin is not executable"
for cmd in chromium curl redis-server redis-cli psql setsid timeout; do
  command -v "$cmd" >/dev/null 2>&1 || ptest_die "$cmd is not installed"
done
# shellcheck source=deploy/lib/common.sh
source "${POSTD_TEST_LIB:-$repo/deploy/lib/common.sh}"
postd_service_user || ptest_die "no service user for PostgreSQL"
mkdir -p "$out_dir" || ptest_die "cannot create $out_dir"
out_dir=$(cd "$out_dir" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/postd-dashboard.XXXXXX")
postd_pid=
load_pid=
chrome_pid=
started_redis=0
started_pg=0
started_at=$SECONDS

# Stop a process group we started with setsid (the browser and its helpers).
stop_group() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# cleanup STATUS, at exit.
cleanup() {
  stop_group "$chrome_pid"
  ptest_stop_pid "$load_pid" curl
  ptest_stop_pid "$postd_pid" postd
  (($1 == 0)) || ptest_tail_logs 25 "$work/postd.log" "$work/chromium.err"
  ((started_redis)) && postd_stop_redis "$work/redis"
  ((started_pg)) && postd_stop_postgres "$work/pg"
  rm -rf -- "$work"
}
ptest_on_exit cleanup

# ---------------------------------------------------------------- helpers

# chromium NAME BUDGET_MS [--screenshot=FILE]: load the page, let it run
# BUDGET_MS of virtual time, dump its DOM into $work/NAME.html.
chromium_run() {
  local name=$1 budget=$2 rc=0
  shift 2
  local profile
  profile=$(mktemp -d "$work/chromium-profile.XXXXXX")
  setsid timeout -k 5 45 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$profile" --window-size=1280,860 \
    --virtual-time-budget="$budget" --dump-dom "$@" "$url/dashboard" \
    >"$work/$name.html" 2>>"$work/chromium.err" &
  chrome_pid=$!
  wait "$chrome_pid" || rc=$?
  stop_group "$chrome_pid" # helpers left behind, if any
  chrome_pid=
  rm -rf -- "$profile"
  ((rc == 0)) || ptest_die "chromium ($name) exited with $rc"
  [[ -s $work/$name.html ]] || ptest_die "chromium ($name) dumped no DOM"
}

# dom_attr FILE METRIC ATTR: attribute ATTR of the element with data-metric=METRIC.
dom_attr() {
  grep -o "<[^>]*data-metric=\"$2\"[^>]*>" "$1" | head -n 1 |
    sed -n "s/.* $3=\"\([^\"]*\)\".*/\1/p"
}

# dom_text FILE METRIC [END]: the text inside the element with
# data-metric=METRIC, up to the first END (</div>) after it, markup removed.
dom_text() {
  tr '\n' ' ' <"$1" | grep -o "data-metric=\"$2\"[^>]*>.*" | head -n 1 |
    sed -e "s#${3:-</div>}.*##" -e 's/^[^>]*>//' -e 's/<[^>]*>/ /g' -e 's/  */ /g' -e 's/ $//'
}

# queue_counts: "waiting active delayed failed completed" from /health/queue.
queue_counts() {
  local body k v line=()
  body=$(curl -fsS -m 3 "$url/health/queue") || ptest_die "GET /health/queue failed"
  for k in waiting active delayed failed completed; do
    v=$(sed -n "s/.*\"$k\":\([0-9][0-9]*\).*/\1/p" <<<"$body")
    [[ -n $v ]] || ptest_die "GET /health/queue has no $k: $body"
    line+=("$v")
  done
  printf '%s\n' "${line[*]}"
}

# ---------------------------------------------------------------- services

redis_port=$(postd_free_port) || ptest_die "no free port"
postd_start_redis "$work/redis" "$redis_port" || ptest_die "Redis failed to start"
started_redis=1
pg_port=$(postd_free_port) || ptest_die "no free port"
started_pg=1 # from here on cleanup stops whatever started
postd_start_postgres "$work/pg" "$pg_port" || ptest_die "PostgreSQL failed to start"
PGCONNECT_TIMEOUT=5 psql -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres \
  -d postgres -c 'CREATE DATABASE postd_dashboard' >/dev/null || ptest_die "cannot create the database"
secret=dashboard-secret-$$-$RANDOM
queue=dashboard-test
postd_env=(
  "DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/postd_dashboard"
  "REDIS_HOST=127.0.0.1" "REDIS_PORT=$redis_port" "QUEUE_PREFIX=bull" "QUEUE_NAME=$queue"
  "JWT_SECRET=$secret" "WRITERS=2"
  "HOST=127.0.0.1" "HTTP_THREADS=1" "LOG_LEVEL=warn" "THROTTLE_LIMIT=100000"
  "DB_CONNECT_TIMEOUT_MS=1000" "SHUTDOWN_GRACE_MS=2000"
)
env "${postd_env[@]}" timeout 60 "$postd_bin" migrate >"$work/migrate.log" 2>&1 ||
  { sed 's/^/    /' "$work/migrate.log" >&2; ptest_die "postd migrate failed"; }

postd_port=$(postd_free_port) || ptest_die "no free port"
url=http://127.0.0.1:$postd_port
env "${postd_env[@]}" PORT="$postd_port" "$postd_bin" serve >"$work/postd.log" 2>&1 &
postd_pid=$!
ptest_wait_http postd "$postd_pid" "$url/health" 20 || ptest_die "postd exited at start"
ptest_say "postd serves $url (Redis :$redis_port, PostgreSQL :$pg_port)"

# ---------------------------------------------------------------- the page itself

curl -fsS -m 5 -D "$work/page.headers" -o "$work/page.html" "$url/dashboard" || ptest_die "GET /dashboard failed"
cmp -s "$work/page.html" "$page_src" ||
  ptest_die "GET /dashboard does not answer $page_src as it is now (a binary built before the last edit?)"
grep -qi '^content-type: text/html; charset=utf-8' "$work/page.headers" ||
  ptest_die "GET /dashboard: Content-Type is not text/html; charset=utf-8"
grep -qi "^content-security-policy: default-src 'none'; connect-src 'self'" "$work/page.headers" ||
  ptest_die "GET /dashboard carries no Content-Security-Policy limiting it to its origin"
# Self-contained: nothing in it names another origin.
if grep -noE '(src|href)="(https?:)?//|url\((https?:)?//|@import|fetch\((["'\''`])(https?:)?//' "$page_src"; then
  ptest_die "the page refers to an external resource (above)"
fi

# ---------------------------------------------------------------- healthy, posts flowing

token=$(env JWT_SECRET="$secret" "$postd_bin" token --sub dashboard-author) || ptest_die "postd token failed"
n_posts=600
{
  for ((i = 0; i < n_posts; i++)); do
    printf 'url = "%s/v1/post/create"\noutput = "/dev/null"\n' "$url"
  done
} >"$work/load.curl"
curl -sS -K "$work/load.curl" --rate 50/s -m 5 -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' --data-binary '{"content":"hello from the dashboard test"}' \
  -w '%{http_code}\n' >"$work/load.codes" 2>"$work/load.err" &
load_pid=$!
sleep 3 # some history first

chromium_run healthy 30000 --screenshot="$out_dir/dashboard-healthy.png"
[[ -s $out_dir/dashboard-healthy.png ]] || ptest_die "chromium saved no screenshot"
dom=$work/healthy.html
[[ $(dom_attr "$dom" banner data-state) == hidden ]] ||
  ptest_die "the banner shows while everything is up: $(dom_text "$dom" banner)"
[[ -n $(dom_attr "$dom" updated data-value) ]] || ptest_die "the page never refreshed"
# Creates accepted per second, now or (on a slow machine, the load over)
# at the throughput chart's peak.
accepted=$(dom_attr "$dom" accepted_rate data-value)
peak=$(grep -o '<[^>]*data-chart-max="throughput"[^>]*>' "$dom" | sed -n 's/.* data-value="\([^"]*\)".*/\1/p')
if ! awk -v a="${accepted:-0}" -v p="${peak:-0}" 'BEGIN { exit !(a + 0 > 0 || p + 0 > 0) }'; then
  ptest_die "the page shows no accepted creates per second while posts flow (now '$accepted', peak '$peak')"
fi
p99=$(dom_attr "$dom" p99 data-value)
[[ $p99 =~ ^[0-9.e-]+$ ]] || ptest_die "the page shows no create latency p99 while posts flow ($(dom_text "$dom" p99))"
ptest_say "posts flowing: the page shows $(dom_text "$dom" accepted_rate) accepted/s; $out_dir/dashboard-healthy.png"

wait "$load_pid" || ptest_die "the load (curl) failed: $(tail -n 3 "$work/load.err")"
load_pid=
n_202=$(grep -c '^202$' "$work/load.codes") || true
((n_202 == n_posts)) || ptest_die "$n_202 of $n_posts creates answered 202: $(sort "$work/load.codes" | uniq -c | tr '\n' ' ')"

# ---------------------------------------------------------------- counts match /health/queue

deadline=$((SECONDS + 30))
while :; do
  counts=$(queue_counts)
  read -r waiting active delayed failed completed <<<"$counts"
  ((waiting + active + delayed == 0 && completed + failed >= n_posts)) && break
  ((SECONDS < deadline)) ||
    ptest_die "the queue did not drain within 30 s (waiting $waiting, active $active, delayed $delayed, completed $completed)"
  sleep 0.2
done
# Entries only counted, never run: failed ones, and delayed ones due in an hour.
now_ms=$(($(date +%s) * 1000))
due=$(((now_ms + 3600000) * 4096)) # Bull's delayed score: timestamp * 0x1000 + a counter
redis-cli -h 127.0.0.1 -p "$redis_port" zadd "bull:$queue:failed" "$now_ms" dash-failed-1 \
  "$now_ms" dash-failed-2 >/dev/null || ptest_die "cannot add entries to bull:$queue:failed"
redis-cli -h 127.0.0.1 -p "$redis_port" zadd "bull:$queue:delayed" "$due" dash-delayed-1 \
  $((due + 1)) dash-delayed-2 $((due + 2)) dash-delayed-3 >/dev/null || ptest_die "cannot add entries to bull:$queue:delayed"
deadline=$((SECONDS + 10))
until [[ $(queue_counts) == "0 0 3 $((failed + 2)) $completed" ]]; do
  ((SECONDS < deadline)) || ptest_die "GET /health/queue does not count the added entries: $(queue_counts)"
  sleep 0.2
done
before=$(queue_counts)
chromium_run counts 5000
after=$(queue_counts)
dom=$work/counts.html
read -ra lo <<<"$before"
read -ra hi <<<"$after"
names=(waiting active delayed failed completed)
shown=()
for i in "${!names[@]}"; do
  v=$(dom_attr "$dom" "${names[i]}" data-value)
  [[ $v =~ ^[0-9]+$ ]] || ptest_die "the page shows no number for ${names[i]} ($(dom_text "$dom" "${names[i]}"))"
  a=${lo[i]} b=${hi[i]}
  ((a <= b)) || { t=$a a=$b b=$t; }
  ((v >= a && v <= b)) ||
    ptest_die "the page shows ${names[i]} $v; /health/queue said ${lo[i]} before and ${hi[i]} after"
  shown+=("${names[i]} $v")
done
[[ $(dom_attr "$dom" banner data-state) == hidden ]] || ptest_die "the banner shows: $(dom_text "$dom" banner)"
[[ $(dom_attr "$dom" postgres data-state) == up && $(dom_attr "$dom" redis data-state) == up ]] ||
  ptest_die "the page does not show both dependencies up"
[[ $(dom_attr "$dom" writers data-value) == 2 ]] || ptest_die "the page does not show 2 writers running"
[[ $(dom_text "$dom" queue '</b>') == "$queue" ]] || ptest_die "the page does not name queue $queue: $(dom_text "$dom" queue '</b>')"
ptest_say "the page matches /health/queue (before: $before; after: $after): ${shown[*]}"

# ---------------------------------------------------------------- PostgreSQL down

postd_stop_postgres "$work/pg" || ptest_die "cannot stop PostgreSQL"
deadline=$((SECONDS + 20))
while :; do
  code=$(curl -sS -m 3 -o "$work/health.json" -w '%{http_code}' "$url/health") || code=000
  [[ $code == 503 ]] && grep -q '"error":{[^}]*"database"' "$work/health.json" && break
  ((SECONDS < deadline)) || ptest_die "GET /health did not answer 503 naming the database within 20 s (got $code)"
  sleep 0.2
done
ptest_say "PostgreSQL stopped: GET /health answers 503: $(head -c 300 "$work/health.json")"
chromium_run db-down 5000 --screenshot="$out_dir/dashboard-db-down.png"
[[ -s $out_dir/dashboard-db-down.png ]] || ptest_die "chromium saved no screenshot"
dom=$work/db-down.html
banner=$(dom_text "$dom" banner)
[[ $(dom_attr "$dom" banner data-state) == visible ]] || ptest_die "no banner while PostgreSQL is down"
[[ $banner == *PostgreSQL* && $banner == *database* ]] || ptest_die "the banner does not name PostgreSQL (the database): $banner"
[[ $(dom_attr "$dom" postgres data-state) == down ]] || ptest_die "the page does not show PostgreSQL down"
[[ $(dom_attr "$dom" redis data-state) == up ]] || ptest_die "the page shows Redis down too"
ptest_say "the banner says: $banner"
ptest_say "screenshots: $out_dir/dashboard-healthy.png $out_dir/dashboard-db-down.png"
ptest_say "passed in $((SECONDS - started_at)) s"
