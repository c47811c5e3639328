#!/usr/bin/env bash
# Load benchmark: postd's POST /v1/post/create against the ceiling of HTTP on
# this machine (a minimal Beast server answering the same 202), one after the
# other in the same run, with wrk. Prints a table with four rows per
# connection count: ceiling; postd, the accept path (an ingest-only instance,
# WRITERS=0); postd+r1, the same accept path with ACK_REPLICAS=1 against a
# replica of its Redis on this machine (each batch waits for the replica's
# WAIT acknowledgement before its 202s); postd+w, one instance that also
# persists to PostgreSQL with 4 writers while it accepts; postd+pw, the same
# instance with every create asking `Prefer: wait=2` (answered 201 once its
# row is written; the 201/202 counts follow the table); postd+img, the same
# instance with every create a multipart upload of one 100 KiB PNG (stored,
# fsynced, its URL in the row's images); postd+d, the accept
# path again, its creates carrying a W3C traceparent, while BENCH_DASHBOARDS
# (100) open dashboards poll it (/health, /health/queue and /metrics, each
# once a second per dashboard, wrk paced beside). After the table, per
# connection count: postd+r1 / postd (req/s and p99, the cost of the replica
# guarantee), with postd+r1's answers, those not 202 and its WAIT shortfalls
# (from its /metrics), so that one sees whether every answer was a 202; and
# postd+d / postd (the cost of traces and of the dashboards' polls).
#
# Then: postd+w end to end at BENCH_RATE posts/s (paced; the queue each
# second, every 202 a row); latency against the offered rate while
# persisting (BENCH_PACED_RATES, Redis at appendfsync everysec and always,
# the ceiling server beside; a table and a PNG plot, BENCH_PLOT); a drain
# of BENCH_DRAIN_JOBS queued jobs next to PostgreSQL's own ceiling.
#
#   bench/run.sh                      30 s per run, 50 and 200 connections
#   BENCH_SECONDS=10 bench/run.sh     shorter runs
#   BENCH_CONNECTIONS="50" bench/run.sh   connection counts
#   BENCH_SECTIONS="paced" bench/run.sh   only some parts (table e2e paced drain)
#   POSTD_BUILD_DIR=build/dev POSTD_SKIP_BUILD=1 bench/run.sh   that build as is
#
# It starts its own Redis servers (one per postd instance, so one's backlog
# never weighs on the other, and a replica of postd+r1's) and PostgreSQL on
# free loopback ports in a temp dir, and stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lib/common.sh
source deploy/lib/common.sh

seconds=${BENCH_SECONDS:-30}
connections=${BENCH_CONNECTIONS:-"50 200"}
build_dir=${POSTD_BUILD_DIR:-build/release}

postd_install_packages
[[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || postd_build "$build_dir" Release
postd_service_user >/dev/null

work=$(mktemp -d /tmp/postd-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/redis" "$work/redis-full" "$work/redis-r1" "$work/redis-r1-replica" "$work/pg"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  postd_stop_postgres "$work/pg" || true
  postd_stop_redis "$work/redis" || true
  postd_stop_redis "$work/redis-full" || true
  postd_stop_redis "$work/redis-r1-replica" || true
  postd_stop_redis "$work/redis-r1" || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

redis_port=$(postd_free_port)
redis_full_port=$(postd_free_port)
pg_port=$(postd_free_port)
postd_start_redis "$work/redis" "$redis_port"
postd_start_redis "$work/redis-full" "$redis_full_port"
# postd+r1's Redis and its replica (same settings: AOF everysec).
redis_r1_port=$(postd_free_port)
postd_start_redis "$work/redis-r1" "$redis_r1_port"
redis_replica_port=$(postd_free_port)
postd_start_redis "$work/redis-r1-replica" "$redis_replica_port" \
  "replicaof 127.0.0.1 $redis_r1_port"
postd_start_postgres "$work/pg" "$pg_port"
psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE postd' >/dev/null

export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/postd"
export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port JWT_SECRET=bench-secret
export THROTTLE_LIMIT=1000000000 LOG_LEVEL=warn HOST=127.0.0.1
"$build_dir/postd" migrate >/dev/null
TOKEN=$("$build_dir/postd" token --sub bench-user --ttl 86400)
export TOKEN

wait_port() {
  for _ in $(seq 100); do
    postd_port_listening "$1" && return 0
    sleep 0.1
  done
  echo "postd: nothing listens on $1" >&2
  return 1
}

# run_wrk NAME PORT CONNECTIONS PID -> one table row; also appends
# "NAME CONNECTIONS REQ/S P99_MS" to $work/results for the ratios.
run_wrk() {
  local name=$1 port=$2 conns=$3 pid=$4 out rss
  out=$(wrk -t1 -c"$conns" -d"${seconds}s" --latency -s bench/post.lua \
    "http://127.0.0.1:$port/v1/post/create" | grep '^RESULT')
  rss=$(ps -o rss= -p "$pid" | tr -d ' ')
  echo "$out" | awk -v name="$name" -v conns="$conns" -v rss="$rss" \
    -v results="$work/results" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    rps = v["requests"] / (v["duration_us"] / 1e6); p99 = v["p99_us"] / 1000
    printf "| %-8s | %5d | %9.0f | %8.2f | %8.2f | %6d | %7.1f |\n", name, conns,
      rps, v["p50_us"] / 1000, p99,
      v["non2xx"] + v["errors_connect"] + v["errors_timeout"], rss / 1024
    printf "%s %d %.3f %.3f\n", name, conns, rps, p99 >> results
  }'
}

ceiling_port=$(postd_free_port)
"$build_dir/ceiling_server" "$ceiling_port" 2 & pids+=($!)
ceiling_pid=$!
wait_port "$ceiling_port"

# Two postd instances on their own queues: "postd" is the accept path alone
# (WRITERS=0, an ingest-only instance: HTTP, throttle, batched adds to
# Redis); "postd+w" also runs 4 writers that persist to PostgreSQL during
# the run, all on the same 2 cores.
# The ingest-only instance never sheds load (QUEUE_MAX_WAITING): its queue
# only grows. Its Redis is emptied before each of its runs (fresh_ingest).
ingest_port=$(postd_free_port)
QUEUE_NAME=bench-ingest WRITERS=0 QUEUE_MAX_WAITING=1000000000000 PORT=$ingest_port \
  "$build_dir/postd" serve \
  > "$work/postd-ingest.log" 2>&1 & pids+=($!)
ingest_pid=$!
# Its own database: the drain below counts the rows of one queue.
psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE postd_full' >/dev/null
full_db="postgresql://postgres@127.0.0.1:$pg_port/postd_full"
DATABASE_URL=$full_db "$build_dir/postd" migrate >/dev/null
full_port=$(postd_free_port)
DATABASE_URL=$full_db REDIS_PORT=$redis_full_port QUEUE_NAME=bench-full WRITERS=${BENCH_WRITERS:-4} \
  STORAGE_DIR=$work/files PORT=$full_port "$build_dir/postd" serve \
  > "$work/postd-full.log" 2>&1 & pids+=($!)
full_pid=$!
# "postd+r1": the same accept path with ACK_REPLICAS=1, on its own Redis
# whose replica (above) must acknowledge each batch (WAIT 1 100) before its
# 202s; a batch it does not confirm in time is answered 503.
r1_port=$(postd_free_port)
REDIS_PORT=$redis_r1_port QUEUE_NAME=bench-r1 WRITERS=0 QUEUE_MAX_WAITING=1000000000000 \
  ACK_REPLICAS=1 PORT=$r1_port "$build_dir/postd" serve \
  > "$work/postd-r1.log" 2>&1 & pids+=($!)
r1_pid=$!
wait_port "$ingest_port"
wait_port "$full_port"
wait_port "$r1_port"

# BENCH_SECTIONS: the parts to run, of (in this order) table (the closed-loop
# table and its ratios), e2e (end to end at BENCH_RATE), paced (latency
# against the offered rate, both appendfsync settings, and its plot) and
# drain; all by default.
sections=" ${BENCH_SECTIONS:-table e2e paced drain} "
wants() { [[ $sections == *" $1 "* ]]; }

if wants table; then
  echo "wrk -t1, ${seconds}s per run, on $(nproc) cores; Redis and PostgreSQL on the same machine"
  echo
  echo "| server   | conns | req/s     | p50 ms   | p99 ms   | errors | RSS MiB |"
  echo "|----------|-------|-----------|----------|----------|--------|---------|"
fi
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
full_cli() { redis-cli -h 127.0.0.1 -p "$redis_full_port" "$@"; }
r1_cli() { redis-cli -h 127.0.0.1 -p "$redis_r1_port" "$@"; }
replica_cli() { redis-cli -h 127.0.0.1 -p "$redis_replica_port" "$@"; }
# queued CLI QUEUE -> its jobs in wait + active, read at one instant
queued() {
  "$1" EVAL "return redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])" \
    2 "bull:$2:wait" "bull:$2:active"
}
# rewrite_aof CLI: a fresh AOF holding only what the Redis holds now
rewrite_aof() {
  "$1" BGREWRITEAOF >/dev/null
  while "$1" INFO persistence | grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
    sleep 0.1
  done
}
# Each ingest run starts from an empty Redis with a fresh AOF, as if writers
# had kept up: a million jobs left over from the run before would make it
# measure Redis rewriting them (the AOF rewrites grow with the data).
fresh_ingest() {
  rcli FLUSHALL >/dev/null
  rewrite_aof rcli
}
# The same for postd+r1, on its Redis and on the replica (once the replica
# has the FLUSHALL too).
fresh_r1() {
  r1_cli FLUSHALL >/dev/null
  if (($(r1_cli WAIT 1 10000) < 1)); then
    echo "bench: postd+r1's replica did not acknowledge the FLUSHALL" >&2
  fi
  rewrite_aof r1_cli
  rewrite_aof replica_cli
}
# create_counts PORT -> "ANSWERS NOT_202 WAIT_SHORTFALLS" so far, from postd's
# /metrics (it answers the requests wrk leaves in flight too).
create_counts() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^http_requests_total\{route="\/v1\/post\/create",method="POST",/ {
      n += $NF; if ($0 !~ /status="202"/) bad += $NF }
    /^postd_redis_wait_shortfalls_total / { s = $NF }
    END { printf "%d %d %d\n", n, bad, s }'
}
# create_statuses PORT -> "201S 202S OTHERS" among the creates answered so
# far (postd's /metrics).
create_statuses() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^http_requests_total\{route="\/v1\/post\/create",method="POST",/ {
      if ($0 ~ /status="201"/) c += $NF
      else if ($0 ~ /status="202"/) a += $NF
      else o += $NF }
    END { printf "%d %d %d\n", c, a, o }'
}
# The replica has loaded its master's data and follows it.
for ((i = 0; ; i++)); do
  r1_cli INFO replication | grep -q '^slave0:.*state=online' && break
  if ((i >= 300)); then
    echo "bench: postd+r1's replica is not in sync after 30 s" >&2
    exit 1
  fi
  sleep 0.1
done
# postd+w leaves a backlog its writers go on persisting: the next run waits
# for it (at most 5 minutes), or it would measure them too.
settle_full() {
  local i left
  for ((i = 0; i < 3000; i++)); do
    left=$(queued full_cli bench-full)
    ((left == 0)) && return 0
    sleep 0.1
  done
  echo "bench: postd+w still has $left jobs to persist" >&2
}
# postd+d: BENCH_DASHBOARDS open dashboards polling the ingest-only instance
# (paced, beside the run) while its creates carry a traceparent.
dashboards=${BENCH_DASHBOARDS:-100}
run_traced_with_dashboards() {
  local conns=$1 dash_pid
  RATE=$((3 * dashboards)) PACED_SCRIPT=dashboards.lua wrk -t1 -c10 \
    -d"$((seconds + 1))s" -s bench/paced.lua "http://127.0.0.1:$ingest_port" \
    > "$work/dashboards-$conns.txt" & dash_pid=$!
  TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \
    run_wrk postd+d "$ingest_port" "$conns" "$ingest_pid"
  wait "$dash_pid" || true
}
if wants table; then
  for c in $connections; do
    run_wrk ceiling "$ceiling_port" "$c" "$ceiling_pid"
    fresh_ingest
    run_wrk postd "$ingest_port" "$c" "$ingest_pid"
    fresh_ingest
    run_traced_with_dashboards "$c"
    fresh_r1
    before=$(create_counts "$r1_port")
    run_wrk postd+r1 "$r1_port" "$c" "$r1_pid"
    sleep 0.5 # the answers to the requests wrk left in flight
    echo "$c $before $(create_counts "$r1_port")" >> "$work/r1-counts"
    run_wrk postd+w "$full_port" "$c" "$full_pid"
    settle_full
    before=$(create_statuses "$full_port")
    PREFER=wait=2 run_wrk postd+pw "$full_port" "$c" "$full_pid"
    sleep 2.5 # the waits wrk left in flight
    echo "$c $before $(create_statuses "$full_port")" >> "$work/pw-counts"
    settle_full
    IMAGE_BYTES=102400 run_wrk postd+img "$full_port" "$c" "$full_pid"
    settle_full
  done
  echo
  # The cost of the replica guarantee: postd+r1 (ACK_REPLICAS=1) over postd
  # (ACK_REPLICAS=0), run one after the other at each connection count.
  awk 'FILENAME ~ /results$/ { rps[$1, $2] = $3; p99[$1, $2] = $4; next }
    {
      c = $1
      printf "postd+r1 / postd at %d conns: req/s x%.2f, p99 x%.2f;", c,
        rps["postd+r1", c] / rps["postd", c], p99["postd+r1", c] / p99["postd", c]
      printf " postd+r1 answered %d creates, %d not 202, %d WAIT shortfalls\n",
        $5 - $2, $6 - $3, $7 - $4
    }' "$work/results" "$work/r1-counts"
  # The cost of traces and of BENCH_DASHBOARDS open dashboards: postd+d over
  # postd, one after the other at each connection count.
  for c in $connections; do
    awk -v c="$c" -v d="$dashboards" '
      FILENAME ~ /results$/ { rps[$1, $2] = $3; p99[$1, $2] = $4; next }
      /^DASHBOARDS/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "postd+d / postd at %d conns: req/s x%.2f, p99 x%.2f;", c,
          rps["postd+d", c] / rps["postd", c], p99["postd+d", c] / p99["postd", c]
        printf " %d dashboards polled %d times (%d not 200, %d errors, p99 %.2f ms)\n",
          d, v["requests"], v["non2xx"], v["errors"], v["p99_us"] / 1000
      }' "$work/results" "$work/dashboards-$c.txt"
  done
  # Creates that wait for their rows (Prefer: wait=2) on postd+w: how many
  # were answered 201 (persisted in time) and how many 202.
  awk '{
    printf "postd+pw at %d conns: %d answered 201 (persisted within the wait), %d 202, %d other\n",
      $1, $5 - $2, $6 - $3, $7 - $4 }' "$work/pw-counts"
  echo
  echo "postd    /health/queue after the runs: $(curl -s "http://127.0.0.1:$ingest_port/health/queue")"
  echo "postd+r1 /health/queue after the runs: $(curl -s "http://127.0.0.1:$r1_port/health/queue")"
  echo "postd+w  /health/queue after the runs: $(curl -s "http://127.0.0.1:$full_port/health/queue")"
  echo "(postd's and postd+r1's queues hold their last run's jobs: their Redis is emptied before each)"
fi
# postd+r1 and its Redis servers are done: the runs below use neither.
kill "$r1_pid" 2>/dev/null || true
wait "$r1_pid" 2>/dev/null || true
postd_stop_redis "$work/redis-r1-replica"
postd_stop_redis "$work/redis-r1"

pg() { psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d "${PGDB:-postd}" "$@"; }
now_ms() { date +%s%3N; }
# 202s answered so far (create_counts: answers, not 202, WAIT shortfalls).
accepted() { create_counts "$full_port" | awk '{ print $1 - $2 }'; }

if wants e2e; then
  # End to end: postd+w accepts BENCH_RATE posts/s (wrk paced by
  # bench/paced.lua, every request on a shared schedule) and persists them at
  # the same time. The queue (wait + active) is sampled every second: it stays
  # flat when the writers keep up. Then every accepted post must be a row.
  rate=${BENCH_RATE:-10000}
  e2e_conns=${BENCH_RATE_CONNECTIONS:-200}
  # From the same state as a fresh deployment: no jobs, no rows, a fresh AOF
  # (the rows of the runs above must go too).
  full_cli FLUSHALL >/dev/null
  rewrite_aof full_cli
  PGDB=postd_full pg -c 'TRUNCATE "Post"' -c 'CHECKPOINT'
  accepted_before=$(accepted)

  (for ((i = 1; i <= seconds; i++)); do sleep 1; queued full_cli bench-full; done) \
    > "$work/e2e-queue.txt" & sampler=$!
  e2e=$(RATE=$rate wrk -t1 -c"$e2e_conns" -d"${seconds}s" --latency -s bench/paced.lua \
    "http://127.0.0.1:$full_port/v1/post/create" | grep '^RESULT')
  wait "$sampler"
  start=$(now_ms)
  settle_full
  settle_ms=$(($(now_ms) - start))
  rows_after=$(PGDB=postd_full pg -tAc 'SELECT count(*) FROM "Post"')
  # Creates answered 202 during the run (postd's /metrics; not Bull's id
  # counter, which postd keeps above the ids it already gave after a
  # FLUSHALL): wrk does not count the requests still in flight when it stops,
  # postd answered them anyway.
  jobs_queued=$(($(accepted) - accepted_before))
  echo
  echo "End to end at $rate posts/s for ${seconds}s (postd+w, wrk -c$e2e_conns paced): answered,"
  echo "the queue (wait + active) each second, the jobs queued and the rows written"
  echo
  echo "$e2e" | awk -v rows="$rows_after" -v settle="$settle_ms" -v jobs="$jobs_queued" \
    -v samples="$(tr '\n' ' ' < "$work/e2e-queue.txt")" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n = split(samples, q, " "); max = 0
    for (i = 1; i <= n; i++) if (q[i] + 0 > max) max = q[i] + 0
    printf "| answered/s | p50 ms | p99 ms | errors | queue max | queue at end | jobs queued | rows    | drained after |\n"
    printf "|------------|--------|--------|--------|-----------|--------------|-------------|---------|---------------|\n"
    printf "| %10.0f | %6.2f | %6.2f | %6d | %9d | %12d | %11d | %7d | %11.1f s |\n",
      v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000, v["p99_us"] / 1000,
      v["non2xx"] + v["errors_connect"] + v["errors_timeout"], max, q[n],
      jobs, rows, settle / 1000
    printf "\nqueue each second: %s\n", samples
  }'
fi

if wants paced; then
  # Latency against the offered rate while persisting: postd+w (4 writers, its
  # Redis, PostgreSQL and wrk on the same cores) paced at each of
  # BENCH_PACED_RATES posts/s (wrk -t1 -cBENCH_PACED_CONNECTIONS, bench/paced.lua),
  # with its Redis at appendfsync everysec and then always (every enqueue
  # waits for an fsync), next to the ceiling server paced at the same rates.
  # Each postd run starts on a drained queue; after it the queue must drain
  # and every 202 be a row ("persisted" = rows added / 202s answered). The
  # plot (gnuplot, PNG) shows p50 and p99 against the rate for the three.
  paced_rates=${BENCH_PACED_RATES:-"2000 5000 8000"}
  paced_conns=${BENCH_PACED_CONNECTIONS:-100}
  plot=${BENCH_PLOT:-bench/results/latency-vs-rate.png}
  mkdir -p "$(dirname "$plot")"
  rows_now() { PGDB=postd_full pg -tAc 'SELECT count(*) FROM "Post"'; }
  # cpu_ms PID... -> the CPU time (user + system, all threads) these processes
  # used so far, in ms
  cpu_ms() {
    local hz p
    hz=$(getconf CLK_TCK)
    for p in "$@"; do sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null || true; done |
      awk -v hz="$hz" '{ t += $12 + $13 } END { printf "%d\n", t * 1000 / hz }'
  }
  # PostgreSQL's processes: the postmaster and its children (the writers'
  # backends, WAL writer, checkpointer, ...).
  pg_pids() {
    local pm
    pm=$(head -n 1 "$work/pg/postmaster.pid")
    echo "$pm" $(pgrep -P "$pm")
  }
  # enqueue_batches PORT -> "SUM COUNT" of postd_enqueue_batch_size so far
  enqueue_batches() {
    curl -s "http://127.0.0.1:$1/metrics" | awk '
      /^postd_enqueue_batch_size_sum / { s = $NF }
      /^postd_enqueue_batch_size_count / { c = $NF }
      END { printf "%d %d\n", s, c }'
  }
  # per_unit MS COUNT -> µs per unit, rounded
  per_unit() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%.0f", (n > 0) ? ms * 1000 / n : 0 }'; }
  # paced_row NAME FSYNC RATE PORT -> a table row (NAME ceiling: the ceiling
  # server, else postd+w); appends "RATE P50 P90 P99" to
  # $work/paced-NAME.dat for the plot.
  paced_row() {
    local name=$1 fsync=$2 rate=$3 port=$4 out before_rows before_ok queue_max=-
    local persisted=- sampler batches_before batch=- server_pid=$ceiling_pid
    local redis_pid pgs redis_before pg_before answered server_before
    local server_cpu redis_cpu=- pg_cpu=-
    if [[ $name != ceiling ]]; then
      server_pid=$full_pid
      redis_pid=$(cat "$work/redis-full/redis.pid")
      pgs=$(pg_pids)
      settle_full
      before_rows=$(rows_now)
      before_ok=$(accepted)
      batches_before=$(enqueue_batches "$port")
      redis_before=$(cpu_ms "$redis_pid")
      # shellcheck disable=SC2086 # a list of pids
      pg_before=$(cpu_ms $pgs)
      (for ((i = 1; i <= seconds; i++)); do sleep 1; queued full_cli bench-full; done) \
        > "$work/paced-queue.txt" & sampler=$!
    fi
    server_before=$(cpu_ms "$server_pid")
    out=$(RATE=$rate wrk -t1 -c"$paced_conns" -d"${seconds}s" --latency -s bench/paced.lua \
      "http://127.0.0.1:$port/v1/post/create" | grep '^RESULT')
    if [[ $name == ceiling ]]; then
      answered=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$out")
      server_cpu=$(per_unit $(($(cpu_ms "$server_pid") - server_before)) "$answered")
    else
      wait "$sampler"
      sleep 0.5 # the answers to the requests wrk left in flight
      settle_full
      queue_max=$(sort -n "$work/paced-queue.txt" | tail -n 1)
      answered=$(($(accepted) - before_ok))
      persisted="$(($(rows_now) - before_rows))/$answered"
      # CPU per post from before the run until its posts were all rows.
      server_cpu=$(per_unit $(($(cpu_ms "$server_pid") - server_before)) "$answered")
      redis_cpu=$(per_unit $(($(cpu_ms "$redis_pid") - redis_before)) "$answered")
      # shellcheck disable=SC2086 # a list of pids
      pg_cpu=$(per_unit $(($(cpu_ms $pgs) - pg_before)) "$answered")
      batch=$(printf '%s %s\n' "$batches_before" "$(enqueue_batches "$port")" |
        awk '{ printf "%.1f", ($4 > $2) ? ($3 - $1) / ($4 - $2) : 0 }')
    fi
    echo "$out" | awk -v name="$name" -v fsync="$fsync" -v rate="$rate" -v qmax="$queue_max" \
      -v cpu="$server_cpu $redis_cpu $pg_cpu" \
      -v persisted="$persisted" -v batch="$batch" -v dat="$work/paced-$name.dat" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      split(cpu, c, " ")
      printf "| %-14s | %-11s | %7d | %10.0f | %6.2f | %6.2f | %6.2f | %6d | %9s | %6s | %-13s | %6s | %5s | %5s |\n",
        name, fsync, rate, v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000,
        v["p90_us"] / 1000, v["p99_us"] / 1000,
        v["non2xx"] + v["errors_connect"] + v["errors_timeout"], qmax, batch, persisted,
        c[1], c[2], c[3]
      printf "%d %.3f %.3f %.3f\n", rate, v["p50_us"] / 1000, v["p90_us"] / 1000,
        v["p99_us"] / 1000 >> dat
    }'
  }
  echo
  echo "Latency against the offered rate, persisting (postd+w, wrk -t1 -c$paced_conns paced, ${seconds}s each;"
  echo "batch = creates per enqueue round trip to Redis, mean; persisted = rows written / 202s answered,"
  echo "once the queue drained; CPU µs per post, from the run's start until its posts were rows, of the"
  echo "server (postd, or the ceiling server), its Redis and PostgreSQL (all its processes))"
  echo
  echo "| server         | appendfsync | offered | answered/s | p50 ms | p90 ms | p99 ms | errors | queue max | batch  | persisted     | server | redis | pg    |"
  echo "|----------------|-------------|---------|------------|--------|--------|--------|--------|-----------|--------|---------------|--------|-------|-------|"
  for r in $paced_rates; do paced_row ceiling - "$r" "$ceiling_port"; done
  for fsync in everysec always; do
    full_cli CONFIG SET appendfsync "$fsync" >/dev/null
    for r in $paced_rates; do paced_row "postd-$fsync" "$fsync" "$r" "$full_port"; done
  done
  full_cli CONFIG SET appendfsync everysec >/dev/null
  gnuplot <<GNUPLOT
set terminal pngcairo size 900,560 noenhanced font ",10"
set output "$plot"
set title "POST /v1/post/create, paced: latency against the offered rate ($(nproc) cores, persisting)"
set xlabel "offered posts/s"
set ylabel "latency (ms)"
set key top left
set grid
set yrange [0:*]
set xrange [0:*]
plot "$work/paced-postd-everysec.dat" using 1:4 with linespoints lw 2 title "postd p99, appendfsync everysec", \
     "$work/paced-postd-everysec.dat" using 1:2 with linespoints dt 2 title "postd p50, everysec", \
     "$work/paced-postd-always.dat" using 1:4 with linespoints lw 2 title "postd p99, appendfsync always", \
     "$work/paced-postd-always.dat" using 1:2 with linespoints dt 2 title "postd p50, always", \
     "$work/paced-ceiling.dat" using 1:4 with linespoints lw 2 title "ceiling server p99", \
     10 with lines lc rgb "red" dt 3 title "10 ms"
GNUPLOT
  echo
  echo "plot: $plot"
fi

if wants drain; then
  # Drain: a queue pre-filled with BENCH_DRAIN_JOBS jobs by the ingest-only
  # instance (from an empty Redis; jobs past that number are deleted, hashes
  # too, and the AOF rewritten, so Redis holds that queue and nothing else)
  # persisted by a writer instance with 4 writers, next to PostgreSQL's own
  # ceiling for as many rows of the same shape: COPY, and multi-row INSERTs of
  # 256 rows (what a writer sends), into a copy of "Post" with its indexes.
  drain_jobs=${BENCH_DRAIN_JOBS:-200000}
  kill "$full_pid" 2>/dev/null || true
  wait "$full_pid" 2>/dev/null || true
  fresh_ingest
  for ((i = 0; i < 20; i++)); do
    (($(rcli LLEN bull:bench-ingest:wait) >= drain_jobs)) && break
    wrk -t1 -c50 -d5s -s bench/post.lua \
      "http://127.0.0.1:$ingest_port/v1/post/create" > /dev/null
  done
  kill "$ingest_pid" 2>/dev/null || true
  wait "$ingest_pid" 2>/dev/null || true
  waiting=$(rcli LLEN bull:bench-ingest:wait)
  if ((waiting < drain_jobs)); then drain_jobs=$waiting; fi
  # The newest jobs are at the left end of wait.
  while (($(rcli LLEN bull:bench-ingest:wait) > drain_jobs)); do
    rcli EVAL "local n = math.min(10000, redis.call('LLEN', KEYS[1]) - tonumber(ARGV[2]))
      local ids = redis.call('LRANGE', KEYS[1], 0, n - 1)
      for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
      redis.call('LTRIM', KEYS[1], #ids, -1)" \
      1 bull:bench-ingest:wait bull:bench-ingest: "$drain_jobs" >/dev/null
  done
  rewrite_aof rcli

  drain_port=$(postd_free_port)
  start=$(now_ms)
  QUEUE_NAME=bench-ingest WRITERS=4 PORT=$drain_port "$build_dir/postd" serve \
    > "$work/postd-drain.log" 2>&1 & pids+=($!)
  drain_pid=$!
  while (($(queued rcli bench-ingest) > 0)); do
    sleep 0.05
  done
  drain_ms=$(($(now_ms) - start))
  drained=$(pg -tAc 'SELECT count(*) FROM "Post"')
  kill "$drain_pid"
  wait "$drain_pid" 2>/dev/null || true

  pg -c 'CREATE TABLE post_copy (LIKE "Post" INCLUDING ALL);
         CREATE TABLE post_insert (LIKE "Post" INCLUDING ALL);
         CREATE TABLE post_upsert (LIKE "Post" INCLUDING ALL)'
  awk -v n="$drain_jobs" 'BEGIN {
    for (i = 1; i <= n; i++)
      printf "%08x-0000-4000-8000-%012d,benchmark post %d,bench-user,{},2026-11-26 12:00:00,2026-11-26 12:00:00,%d\n", i, i, i, i
  }' > "$work/rows.csv"
  start=$(now_ms)
  pg -c "\\copy post_copy (id, content, \"authorId\", images, \"createdAt\", \"updatedAt\", \"jobId\") FROM '$work/rows.csv' WITH (FORMAT csv)"
  copy_ms=$(($(now_ms) - start))
  awk -F, -v per=256 '{
    if ((NR - 1) % per == 0) {
      if (NR > 1) print ";"
      printf "INSERT INTO post_insert (id, content, \"authorId\", \"updatedAt\", \"jobId\") VALUES "
    } else printf ","
    printf "(%c%s%c,%c%s%c,%c%s%c,now(),%c%s%c)", 39, $1, 39, 39, $2, 39, 39, $3, 39, 39, $7, 39
  } END { print ";" }' "$work/rows.csv" > "$work/rows.sql"
  start=$(now_ms)
  pg -f "$work/rows.sql"
  insert_ms=$(($(now_ms) - start))
  # The statement a writer must send: the same INSERTs, ON CONFLICT DO NOTHING.
  sed -e 's/^INSERT INTO post_insert /INSERT INTO post_upsert /' \
    -e 's/;$/ ON CONFLICT (id) DO NOTHING;/' "$work/rows.sql" > "$work/upsert.sql"
  start=$(now_ms)
  pg -f "$work/upsert.sql"
  upsert_ms=$(($(now_ms) - start))

  echo
  echo "Drain of $drain_jobs queued jobs against PostgreSQL's ceiling for as many rows"
  echo
  echo "| what                                          | rows    | seconds | rows/s  |"
  echo "|-----------------------------------------------|---------|---------|---------|"
  row() { awk -v w="$1" -v n="$2" -v ms="$3" 'BEGIN {
    printf "| %-45s | %7d | %7.2f | %7.0f |\n", w, n, ms / 1000, n / (ms / 1000) }'; }
  row "PostgreSQL COPY, one connection" "$drain_jobs" "$copy_ms"
  row "PostgreSQL INSERT of 256 rows, one connection" "$drain_jobs" "$insert_ms"
  row "  the same, ON CONFLICT (id) DO NOTHING" "$drain_jobs" "$upsert_ms"
  row "postd drain, 4 writers (Redis + INSERT)" "$drained" "$drain_ms"
  echo
  awk -v n="$drained" -v d="$drain_ms" -v i="$insert_ms" -v u="$upsert_ms" \
    -v c="$copy_ms" -v jobs="$drain_jobs" 'BEGIN {
    r = n / d
    printf "postd drain / INSERT: %.0f%%   / INSERT ON CONFLICT: %.0f%%   / COPY: %.0f%%\n",
      100 * r / (jobs / i), 100 * r / (jobs / u), 100 * r / (jobs / c) }'
fi
