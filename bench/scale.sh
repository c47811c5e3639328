#!/usr/bin/env bash
# Scaling benchmark for SCALING-GUIDE.md: how the accept path grows from one
# postd instance to three behind the deploy kit's nginx on this machine, where
# the CPU goes (per process class), and how many jobs/s one Redis can take.
# One run prints two tables:
#
# 1. Accept path (WRITERS=0, THROTTLE_STORE=redis, TRUST_PROXY=true,
#    THROTTLE_LIMIT huge, all instances on ONE queue in ONE Redis), wrk -t1
#    at BENCH_CONNECTIONS (100) connections:
#      direct   wrk -> postd1
#      nginx-1  wrk -> nginx (deploy/nginx.conf) -> postd1
#      nginx-3  wrk -> nginx -> postd1..3
#    Redis is emptied (and its AOF rewritten) before each run, so the jobs a
#    run added are the queue's length after it. For each run: req/s, p99,
#    jobs added, and the CPU each class of process used (utime + stime from
#    /proc/<pid>/stat before and after; wrk's from its parent shell's cutime),
#    as microseconds per added job and as cores; "other" is the rest of the
#    machine's busy time (/proc/stat), i.e. whatever else ran meanwhile.
#    Then nginx-3 / nginx-1 and nginx-3 / direct, and Redis's CPU per job
#    extrapolated to one full core (Redis runs commands on one thread).
# 2. End to end through nginx (BENCH_E2E=0 skips it): 1 instance with
#    WRITERS=4 vs 3 instances with WRITERS=2 each, persisting through
#    PgBouncer (transaction mode) to PostgreSQL while they accept: "Post"
#    rows written during the run per second, next to the accepted req/s.
#
#   bench/scale.sh                                   10 s per run
#   BENCH_SECONDS=5 bench/scale.sh                   shorter runs
#   POSTD_BUILD_DIR=build/dev POSTD_SKIP_BUILD=1 bench/scale.sh   that build as is
#
# It starts its own Redis, PostgreSQL, PgBouncer, nginx and postd instances on
# free loopback ports in a temp dir, and stops them at the end. Everything
# (wrk included) shares this machine's cores: compare rows of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lib/common.sh
source deploy/lib/common.sh

seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-100}
build_dir=${POSTD_BUILD_DIR:-build/release}
e2e=${BENCH_E2E:-1}
queue=bench-scale

postd_install_packages
[[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || postd_build "$build_dir" Release
postd_service_user >/dev/null

work=$(mktemp -d /tmp/postd-scale.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/redis" "$work/pg" "$work/pgbouncer" "$work/nginx1" "$work/nginx3"
declare -A postd_pid=()
cleanup() {
  local pid
  for pid in "${postd_pid[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${postd_pid[@]}"; do wait "$pid" 2>/dev/null || true; done
  postd_stop_nginx "$work/nginx1" || true
  postd_stop_nginx "$work/nginx3" || true
  postd_stop_pgbouncer "$work/pgbouncer" || true
  postd_stop_postgres "$work/pg" || true
  postd_stop_redis "$work/redis" || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

redis_port=$(postd_free_port)
pg_port=$(postd_free_port)
pgb_port=$(postd_free_port)
postd_start_redis "$work/redis" "$redis_port"
postd_start_postgres "$work/pg" "$pg_port"
postd_start_pgbouncer "$work/pgbouncer" "$pgb_port" "$pg_port"
psql -X -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE postd' >/dev/null

export DATABASE_URL="postgresql://postgres@127.0.0.1:$pgb_port/postd"
export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port JWT_SECRET=bench-secret
export THROTTLE_STORE=redis THROTTLE_LIMIT=2000000000 TRUST_PROXY=true
export QUEUE_NAME=$queue QUEUE_MAX_WAITING=1000000000000 LOG_LEVEL=warn HOST=127.0.0.1
export SHUTDOWN_GRACE_MS=2000
"$build_dir/postd" migrate >/dev/null
TOKEN=$("$build_dir/postd" token --sub bench-user --ttl 86400)
export TOKEN

wait_port() {
  for _ in $(seq 100); do
    postd_port_listening "$1" && return 0
    sleep 0.1
  done
  echo "scale: nothing listens on $1" >&2
  return 1
}

ports=("$(postd_free_port)" "$(postd_free_port)" "$(postd_free_port)")
# start_instance I WRITERS: postd number I (1..3) on its fixed port.
start_instance() {
  local i=$1 writers=$2
  WRITERS=$writers PORT=${ports[i - 1]} "$build_dir/postd" serve \
    >> "$work/postd$i.log" 2>&1 &
  postd_pid[$i]=$!
}
stop_instances() {
  local i
  for i in "${!postd_pid[@]}"; do kill "${postd_pid[$i]}" 2>/dev/null || true; done
  for i in "${!postd_pid[@]}"; do wait "${postd_pid[$i]}" 2>/dev/null || true; done
  postd_pid=()
}
for i in 1 2 3; do start_instance "$i" 0; done
for p in "${ports[@]}"; do wait_port "$p"; done
nginx1_port=$(postd_free_port)
nginx3_port=$(postd_free_port)
# deploy/nginx.conf names three upstreams: nginx-1 gets postd1 three times
# (one instance, the same proxying work per request).
postd_start_nginx "$work/nginx1" "$nginx1_port" "${ports[0]}" "${ports[0]}" "${ports[0]}"
postd_start_nginx "$work/nginx3" "$nginx3_port" "${ports[@]}"

rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
pg() { psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postd "$@"; }
rewrite_aof() {
  rcli BGREWRITEAOF >/dev/null
  while rcli INFO persistence | grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
    sleep 0.1
  done
}
# An empty Redis with a fresh AOF (no backlog from the run before).
fresh_redis() {
  rcli FLUSHALL >/dev/null
  rewrite_aof
  rcli CONFIG RESETSTAT >/dev/null
}

# ticks PID...: utime + stime (clock ticks) of those processes (each counts
# all its threads), those gone counting 0.
ticks() {
  local pid t=0 s
  for pid in "$@"; do
    s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    s=${s##*) }
    # after "comm) ": field 3 is state, so utime (14) and stime (15) are 12 and 13
    read -r -a f <<<"$s"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
# The processes of each class, read when sampled (nginx's workers and
# PostgreSQL's backends are children of their master).
class_pids() {
  local m
  case $1 in
    postd) echo "${postd_pid[@]}" ;;
    nginx)
      for m in "$work/nginx1/nginx.pid" "$work/nginx3/nginx.pid"; do
        m=$(cat "$m")
        echo "$m"; ps -o pid= --ppid "$m" || true
      done
      ;;
    redis) cat "$work/redis/redis.pid" ;;
    pgbouncer) cat "$work/pgbouncer/pgbouncer.pid" ;;
    postgres)
      m=$(head -1 "$work/pg/postmaster.pid")
      echo "$m"; ps -o pid= --ppid "$m" || true
      ;;
  esac
}
classes=(postd nginx redis pgbouncer postgres)
# snapshot FILE: "CLASS PID TICKS" per process, and "machine - BUSY_TICKS".
snapshot() {
  local c pid
  {
    for c in "${classes[@]}"; do
      for pid in $(class_pids "$c"); do echo "$c $pid $(ticks "$pid")"; done
    done
    # busy = user + nice + system + irq + softirq; "niced": processes run
    # with a positive nice value (ours are not), e.g. a build running meanwhile
    awk '/^cpu / { print "machine -", $2 + $3 + $4 + $7 + $8; print "niced -", $3 }' /proc/stat
  } > "$1"
}
# class_ticks BEFORE AFTER -> "CLASS TICKS" per class: per process, its ticks
# after minus before (a process not there before counts whole).
class_ticks() {
  awk 'NR == FNR { t[$1, $2] = $3; next }
    { k = $1 SUBSEP $2; d[$1] += $3 - ((k in t) ? t[k] : 0) }
    END { for (c in d) print c, d[c] }' "$1" "$2"
}

hz=$(getconf CLK_TCK)
cores=$(nproc)
# measure NAME PORT: one wrk run against PORT with CPU snapshots around it;
# appends "key=value ..." for NAME to $work/results.
measure() {
  local name=$1 port=$2 out rows0 rows
  rows0=$(pg -tAc 'SELECT count(*) FROM "Post"')
  snapshot "$work/before"
  # wrk's CPU: its parent shell's cutime + cstime once wrk has been waited for.
  out=$(sh -c 'wrk "$@"; cat /proc/$$/stat' wrk -t1 -c"$conns" -d"${seconds}s" --latency \
    -s bench/post.lua "http://127.0.0.1:$port/v1/post/create")
  snapshot "$work/after"
  rows=$(pg -tAc 'SELECT count(*) FROM "Post"')
  sleep 0.5 # the answers to the requests wrk left in flight
  {
    printf 'name=%s jobs=%s rows=%s ' "$name" "$(rcli LLEN "bull:$queue:wait")" "$((rows - rows0))"
    echo "$out" | grep '^RESULT' | cut -d' ' -f2- | tr '\n' ' '
    echo "$out" | tail -1 | awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
      printf "wrk=%d ", f[14] + f[15] }'
    class_ticks "$work/before" "$work/after" | awk '{ printf "%s=%d ", $1, $2 }'
    rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '
      /^cmdstat_(evalsha|eval):/ { c += $3; u += $5 } END { printf "scripts=%d scriptus=%d", c, u }'
    echo
  } >> "$work/results"
}

# report FILTER: the table of the runs whose name matches FILTER.
report() {
  awk -v hz="$hz" -v cores="$cores" -v secs="$seconds" -v filter="$1" -v e2e="$2" '
  { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["name"] !~ filter) next
    dur = v["duration_us"] / 1e6; rps = v["requests"] / dur; n = v["jobs"]
    if (e2e) n = v["requests"]
    us = 1e6 / hz / (n > 0 ? n : 1)
    known = v["postd"] + v["nginx"] + v["redis"] + v["wrk"] + v["pgbouncer"] + v["postgres"]
    other = v["machine"] - known; if (other < 0) other = 0
    if (!e2e) {
      printf "| %-8s | %7.0f | %6.2f | %7d | %5.1f | %5.1f | %5.1f | %5.1f | %5.1f | %5.1f | %4.2f | %4.2f | %4.2f | %4.2f | %4.2f | %4.2f |\n",
        v["name"], rps, v["p99_us"] / 1000, v["jobs"],
        v["postd"] * us, v["nginx"] * us, v["redis"] * us, v["wrk"] * us,
        (v["pgbouncer"] + v["postgres"]) * us, other * us,
        v["postd"] / hz / dur, v["nginx"] / hz / dur, v["redis"] / hz / dur,
        v["wrk"] / hz / dur, other / hz / dur, v["niced"] / hz / dur
    } else {
      printf "| %-12s | %7.0f | %6.2f | %7d | %7.0f | %4.2f | %4.2f | %4.2f | %4.2f | %4.2f | %4.2f |\n",
        v["name"], rps, v["p99_us"] / 1000, v["rows"], v["rows"] / dur,
        v["postd"] / hz / dur, v["nginx"] / hz / dur, v["redis"] / hz / dur,
        v["wrk"] / hz / dur, (v["pgbouncer"] + v["postgres"]) / hz / dur, other / hz / dur
    }
  }' "$work/results"
}

echo "bench/scale.sh $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, wrk -t1 -c$conns, ${seconds}s per run;"
echo "one Redis, PostgreSQL behind PgBouncer, nginx and wrk all on this machine;"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Warm-up: connections, the throttle key and the scripts loaded.
fresh_redis
wrk -t1 -c"$conns" -d2s -s bench/post.lua "http://127.0.0.1:$nginx3_port/v1/post/create" >/dev/null
fresh_redis
measure direct "${ports[0]}"
fresh_redis
measure nginx-1 "$nginx1_port"
fresh_redis
measure nginx-3 "$nginx3_port"
redis_info=$(rcli INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|eval|info|multi|exec):' || true)

echo "Accept path (WRITERS=0, THROTTLE_STORE=redis): req/s, p99, jobs added (the queue's"
echo "length after the run), CPU per added job in microseconds by process class, and cores"
echo "used by each (\"other\": the rest of the machine's busy time, e.g. other users' work,"
echo "and interrupts; \"niced\": the part of it run at a positive nice value)"
echo
echo "| run      | req/s   | p99 ms | jobs    | postd | nginx | redis | wrk   | pg    | other | postd | nginx | redis | wrk  | other | niced |"
echo "|          |         |        |         | us/job| us/job| us/job| us/job| us/job| us/job| cores | cores | cores | cores| cores | cores |"
echo "|----------|---------|--------|---------|-------|-------|-------|-------|-------|-------|-------|-------|-------|------|-------|-------|"
report '^(direct|nginx-1|nginx-3)$' 0
echo
awk -v hz="$hz" '
  { delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    rps[v["name"]] = v["requests"] / (v["duration_us"] / 1e6); p99[v["name"]] = v["p99_us"]
    if (v["jobs"] > 0) rj[v["name"]] = v["redis"] / hz / v["jobs"]
    sc[v["name"]] = v["scripts"]; su[v["name"]] = v["scriptus"]; jb[v["name"]] = v["jobs"]
    rc[v["name"]] = v["redis"] / hz / (v["duration_us"] / 1e6) }
  END {
    printf "nginx-3 / nginx-1: req/s x%.2f, p99 x%.2f\n", rps["nginx-3"] / rps["nginx-1"], p99["nginx-3"] / p99["nginx-1"]
    printf "nginx-3 / direct:  req/s x%.2f, p99 x%.2f\n", rps["nginx-3"] / rps["direct"], p99["nginx-3"] / p99["direct"]
    printf "nginx-1 / direct:  req/s x%.2f, p99 x%.2f\n", rps["nginx-1"] / rps["direct"], p99["nginx-1"] / p99["direct"]
    print ""
    print "Redis (one thread runs its commands): CPU per added job, and the jobs/s that"
    print "would take 100% of one core at that cost (an EXTRAPOLATION from measured CPU per job,"
    print "throttle script included; not a measured maximum)"
    split("direct nginx-1 nginx-3", names, " ")
    for (i = 1; i <= 3; i++) { n = names[i]
      if (!(n in rj)) continue
      printf "  %-8s %6.2f us/job (Redis at %4.2f cores), scripts %d calls = %.1f jobs/call, %.2f us/job inside scripts -> %6.0f jobs/s at one core\n",
        n, rj[n] * 1e6, rc[n], sc[n], (sc[n] > 0 ? jb[n] / sc[n] : 0), (jb[n] > 0 ? su[n] / jb[n] : 0), 1 / rj[n] }
  }' "$work/results"
echo
echo "Redis commandstats of the last run (nginx-3):"
echo "$redis_info" | sed 's/^/  /'

if [[ $e2e == 1 ]]; then
  # End to end: the same queue and Redis, instances with writers, through
  # nginx (nginx-1 for one instance, nginx-3 for three).
  stop_instances
  run_e2e() {
    local name=$1 port=$2
    fresh_redis
    measure "$name" "$port"
  }
  start_instance 1 4
  wait_port "${ports[0]}"
  sleep 1
  run_e2e e2e-1x4 "$nginx1_port"
  stop_instances
  for i in 1 2 3; do start_instance "$i" 2; done
  for p in "${ports[@]}"; do wait_port "$p"; done
  sleep 1
  run_e2e e2e-3x2 "$nginx3_port"
  echo
  echo "End to end through nginx, writers persisting through PgBouncer while accepting:"
  echo "rows written during the run (\"Post\" count after it, from an empty table)"
  echo
  echo "| run          | req/s   | p99 ms | rows    | rows/s  | postd | nginx | redis | wrk  | pg+pgb | other |"
  echo "|              |         |        |         |         | cores | cores | cores | cores| cores  | cores |"
  echo "|--------------|---------|--------|---------|---------|-------|-------|-------|------|--------|-------|"
  report '^e2e-' 1
fi
