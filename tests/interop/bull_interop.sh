#!/usr/bin/env bash
# Interoperability with the real `bull` 4.16.5 npm package (SPEC §5), run by
# ctest as interop.bull:
#
#   bull_interop.sh POSTD_BINARY
#
# 1. npm installs bull@4.16.5 into a temporary folder (a failed install fails
#    the test: it is never skipped).
# 2. A Node Bull producer adds create-post jobs in the old service's shape and
#    options; a postd with WRITERS=2 persists each exactly once, and Bull sees
#    them completed with returnvalue.postId = the row's id. Such jobs carry no
#    data.postId: each row's id must be the UUIDv5 (namespace
#    798ee318-d2d8-414b-a41c-a2222ebc8a60) of "bull:<queue>:<jobId>@<timestamp>",
#    timestamp being the job's (ms).
# 3. Counter reset, then old-producer jobs retried after a failed attempt:
#    with no postd running, every key of this queue is deleted (as when Redis
#    loses its state; never FLUSHALL: other tests share this Redis), so Bull's
#    job ids start over at 1 and repeat the jobIds of step 2's rows. The Node
#    producer adds new jobs (attempts 3, fixed backoff 500 ms); a Node Bull
#    worker fails the first attempt of each and stops with all of them in
#    `delayed` (attemptsMade 1). A postd with WRITERS=2 then persists them as
#    new rows beside step 2's: each content once, the reused jobIds, ids the
#    UUIDv5 of (queue, jobId, new timestamp); Bull sees them completed with
#    returnvalue.postId = the row's id, attemptsMade still 1.
# 4. An ingest-only postd (WRITERS=0) queues a post; a Node Bull worker
#    processes it; postd's GET /v1/post/jobs/:id reports it completed.
# 5. With jobs waiting, active, completed, failed and delayed, Queue#getJobCounts()
#    and postd's GET /health/queue agree.
#
# Uses the services deploy/test.sh exports (POSTD_TEST_*), on 127.0.0.1 only,
# with its own scratch database and queue name, so it runs in parallel with
# the other tests; stops and removes all it started.
set -euo pipefail

postd_bin=${1:?usage: bull_interop.sh POSTD_BINARY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/support/shell_test.sh
source "$here/../support/shell_test.sh"
ptest_init interop

ptest_require_services POSTD_TEST_LIB POSTD_TEST_REDIS_HOST POSTD_TEST_REDIS_PORT POSTD_TEST_PG_HOST \
  POSTD_TEST_PG_PORT POSTD_TEST_PG_USER POSTD_TEST_PGBOUNCER_HOST POSTD_TEST_PGBOUNCER_PORT
[[ -x $postd_bin ]] || ptest_die "postd binary $postd_bin is not executable"
for cmd in node npm psql curl redis-cli; do
  command -v "$cmd" >/dev/null 2>&1 || ptest_die "$cmd is not installed"
done
# shellcheck source=deploy/lib/common.sh
source "$POSTD_TEST_LIB"

redis_host=$POSTD_TEST_REDIS_HOST
redis_port=$POSTD_TEST_REDIS_PORT
work=$(mktemp -d "${TMPDIR:-/tmp}/postd-interop.XXXXXX")
suffix="$$-$RANDOM"
db=postd_interop_${suffix//-/_}
queue=interop-$suffix
author=interop-author-$suffix
secret=interop-secret-$suffix
db_created=0
postd_pid=
postd_url=
postd_log=

psql_db() { ptest_psql "$db" -tA "$@"; }

stop_postd() {
  ptest_stop_pid "$postd_pid" postd
  postd_pid=
}

# cleanup STATUS, at exit: our queue's keys go too (Bull's and postd's own,
# e.g. idempotency keys).
cleanup() {
  stop_postd
  (($1 == 0)) || ptest_tail_logs 30 "$postd_log"
  ptest_delete_queue_keys "$queue" 2>/dev/null
  ((db_created)) && ptest_drop_database "$db"
  rm -rf -- "$work"
}
ptest_on_exit cleanup

# postd_env WRITERS: the environment of a postd on our queue and database.
postd_env() {
  postd_envs=(
    "DATABASE_URL=postgresql://$POSTD_TEST_PG_USER@$POSTD_TEST_PGBOUNCER_HOST:$POSTD_TEST_PGBOUNCER_PORT/$db"
    "REDIS_HOST=$redis_host" "REDIS_PORT=$redis_port" "JWT_SECRET=$secret"
    "QUEUE_NAME=$queue" "QUEUE_PREFIX=bull" "WRITERS=$1" "LOG_LEVEL=warn" "HOST=127.0.0.1"
  )
}

# start_postd NAME WRITERS: serve on a free port until /health/queue answers.
start_postd() {
  local name=$1 writers=$2 port try postd_envs
  postd_env "$writers"
  for ((try = 1; try <= 3; try++)); do
    port=$(postd_free_port)
    postd_log=$work/postd-$name.log
    env "${postd_envs[@]}" PORT="$port" "$postd_bin" serve >"$postd_log" 2>&1 &
    postd_pid=$!
    postd_url=http://127.0.0.1:$port
    if ptest_wait_http "postd $name" "$postd_pid" "$postd_url/health/queue" 20; then
      ptest_say "postd $name (WRITERS=$writers) serves $postd_url"
      return 0
    fi
    postd_pid=
    grep -qi 'address already in use' "$postd_log" || ptest_die "postd $name exited at start"
  done
  ptest_die "postd $name found no free port in 3 tries"
}

# dump_rows FILE: every "Post" row as a JSON array.
dump_rows() {
  psql_db -o "$1" -c \
    'SELECT json_agg(json_build_object(
        '\''id'\'', id, '\''jobId'\'', "jobId", '\''content'\'', content,
        '\''authorId'\'', "authorId", '\''images'\'', images)) FROM "Post"' ||
    ptest_die "cannot read the \"Post\" rows"
}

# check_rows EXPECTED: that many rows, each content once.
check_rows() {
  local rows distinct
  read -r rows distinct < <(psql_db -F ' ' -c 'SELECT count(*), count(DISTINCT content) FROM "Post"') ||
    ptest_die "cannot count the \"Post\" rows"
  [[ $rows == "$1" && $distinct == "$1" ]] ||
    ptest_die "\"Post\" holds $rows rows with $distinct distinct contents; expected $1 of each"
}

node_client() {
  NODE_PATH=$work/npm/node_modules REDIS_HOST=$redis_host REDIS_PORT=$redis_port \
    QUEUE_NAME=$queue timeout --foreground 60 node "$here/bull_client.js" "$@"
}

# ---------------------------------------------------------------- set-up

ptest_say "npm install bull@4.16.5 into $work/npm"
mkdir -p "$work/npm"
npm_rc=0
(cd "$work/npm" && NPM_CONFIG_UPDATE_NOTIFIER=false timeout --foreground 180 \
  npm install --no-audit --no-fund --no-package-lock --loglevel=error bull@4.16.5) \
  >"$work/npm.log" 2>&1 || npm_rc=$?
if ((npm_rc != 0)); then
  sed 's/^/    /' "$work/npm.log" >&2
  ptest_die "npm install bull@4.16.5 failed (exit $npm_rc)"
fi
bull_version=$(NODE_PATH=$work/npm/node_modules node -p "require('bull/package.json').version") ||
  ptest_die "bull is not loadable after npm install"
[[ $bull_version == 4.16.5 ]] || ptest_die "npm installed bull $bull_version, not 4.16.5"

ptest_psql postgres -c "CREATE DATABASE \"$db\"" >/dev/null || ptest_die "cannot create database $db"
db_created=1
(
  postd_env 0
  env "${postd_envs[@]}" timeout --foreground 60 "$postd_bin" migrate >"$work/migrate.log" 2>&1
) || { sed 's/^/    /' "$work/migrate.log" >&2; ptest_die "postd migrate failed"; }
ptest_say "database $db migrated, queue bull:$queue"

# ---------------------------------------------------------------- Node producer -> postd

n_jobs=50
n_old=5
start_postd writers 2
node_client produce "$work/produced.json" "$n_jobs" "$n_old" || ptest_die "the Node producer failed"
expected=$((n_jobs + n_old))
deadline=$((SECONDS + 30))
while :; do
  rows=$(psql_db -c 'SELECT count(*) FROM "Post"') || ptest_die "cannot count the \"Post\" rows"
  ((rows < expected)) || break
  ((SECONDS < deadline)) || ptest_die "postd persisted $rows of the $expected Node jobs within 30 s"
  sleep 0.2
done
sleep 0.5 # a duplicate written late would show now
check_rows "$expected"
dump_rows "$work/rows.json"
node_client verify-persisted "$work/produced.json" "$work/rows.json" ||
  ptest_die "the jobs of the Node producer were not persisted as Bull expects"
stop_postd

# ---------------------------------------------------------------- counter reset, retried old jobs

# Redis loses the queue's state: Bull's id counter (bull:$queue:id) with the
# rest. No postd runs; only this queue's keys go.
n_reset=10
ptest_delete_queue_keys "$queue" || ptest_die "cannot delete the keys of queue bull:$queue"
left=$(redis-cli -h "$redis_host" -p "$redis_port" --scan --pattern "bull:$queue:*" | wc -l) ||
  ptest_die "cannot list the keys of queue bull:$queue"
((left == 0)) || ptest_die "$left keys of queue bull:$queue are left after deleting them all"
ptest_say "deleted every key of queue bull:$queue (Bull's job id counter starts over)"
node_client produce "$work/reset.json" "$n_reset" 0 500 || ptest_die "the Node producer failed after the counter reset"
# shellcheck disable=SC2016 # JavaScript template literals, not shell
node -e 'const [file, n] = process.argv.slice(1);
  const ids = JSON.parse(require("fs").readFileSync(file, "utf8")).map(j => Number(j.jobId)).sort((a, b) => a - b);
  const want = Array.from({length: Number(n)}, (_, i) => i + 1);
  if (JSON.stringify(ids) !== JSON.stringify(want)) { console.error(`got ids ${ids}, expected ${want}`); process.exit(1); }' \
  "$work/reset.json" "$n_reset" ||
  ptest_die "after the counter reset, Bull did not number the new jobs 1..$n_reset (the ids of earlier rows)"
node_client fail-once "$work/reset.json" ||
  ptest_die "a Node Bull worker did not leave each new job delayed after one failed attempt"
start_postd reset 2
# Bull's view first: postd commits the rows before it marks the jobs
# completed, so once all are finished every row postd meant to write is there.
deadline=$((SECONDS + 30))
while :; do
  # completed, failed, delayed, wait, active: one line each
  states=$(redis-cli -h "$redis_host" -p "$redis_port" eval \
    'return {redis.call("ZCARD", KEYS[1]), redis.call("ZCARD", KEYS[2]), redis.call("ZCARD", KEYS[3]),
             redis.call("LLEN", KEYS[4]), redis.call("LLEN", KEYS[5])}' 5 \
    "bull:$queue:completed" "bull:$queue:failed" "bull:$queue:delayed" "bull:$queue:wait" \
    "bull:$queue:active") || ptest_die "cannot count the jobs of queue bull:$queue"
  mapfile -t in_state <<<"$states"
  ((${#in_state[@]} == 5)) || ptest_die "counting the jobs of queue bull:$queue answered: $states"
  ((in_state[0] + in_state[1] < n_reset)) || break
  ((SECONDS < deadline)) ||
    ptest_die "postd finished $((in_state[0] + in_state[1])) of the $n_reset retried jobs within 30 s" \
      "(completed ${in_state[0]}, failed ${in_state[1]}, delayed ${in_state[2]}, waiting ${in_state[3]}, active ${in_state[4]})"
  sleep 0.2
done
((in_state[1] == 0)) || ptest_say "postd failed ${in_state[1]} of the $n_reset retried jobs"
sleep 0.5 # a duplicate written late would show now
dump_rows "$work/rows-reset.json"
node_client verify-persisted "$work/reset.json" "$work/rows-reset.json" "$work/produced.json" ||
  ptest_die "after the counter reset, the retried jobs of the Node producer were not persisted as new rows"
check_rows "$((expected + n_reset))"
stop_postd

# ---------------------------------------------------------------- postd -> Node worker

start_postd ingest 0
token=$(env JWT_SECRET="$secret" "$postd_bin" token --sub "$author") || ptest_die "postd token failed"
content='from postd to a Node worker: "quoted" ünïcødé ✓'
body=$(node -e 'process.stdout.write(JSON.stringify({content: process.argv[1]}))' "$content")
status=$(curl -sS -m 10 -o "$work/create.json" -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data-binary "$body" "$postd_url/v1/post/create") || ptest_die "POST /v1/post/create: curl failed"
[[ $status == 202 ]] || ptest_die "POST /v1/post/create answered $status: $(cat "$work/create.json")"
job_id=$(node -e 'const b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (typeof b.jobId !== "string" || !b.jobId) process.exit(1); process.stdout.write(b.jobId)' \
  "$work/create.json") || ptest_die "the 202 carries no jobId: $(cat "$work/create.json")"
node_client work-one "$job_id" "$content" "$author" "$work/worker-post-id" ||
  ptest_die "a Node Bull worker did not process postd's job $job_id"
status=$(curl -sS -m 10 -o "$work/job.json" -w '%{http_code}' \
  -H "Authorization: Bearer $token" "$postd_url/v1/post/jobs/$job_id") ||
  ptest_die "GET /v1/post/jobs/$job_id: curl failed"
[[ $status == 200 ]] || ptest_die "GET /v1/post/jobs/$job_id answered $status: $(cat "$work/job.json")"
# shellcheck disable=SC2016 # JavaScript template literals, not shell
node -e 'const [file, id, postId] = process.argv.slice(1);
  const b = JSON.parse(require("fs").readFileSync(file, "utf8"));
  const ok = b.jobId === id && b.status === "completed" && b.postId === postId;
  if (!ok) { console.error(`got ${JSON.stringify(b)}, expected jobId ${id}, status completed, postId ${postId}`); process.exit(1); }' \
  "$work/job.json" "$job_id" "$(cat "$work/worker-post-id")" ||
  ptest_die "GET /v1/post/jobs/$job_id does not report the Node worker's completion"
ptest_say "GET /v1/post/jobs/$job_id reports the Node worker's completion"

# ---------------------------------------------------------------- counts

# Completed so far (the counter reset deleted the earlier ones): the retried
# Node jobs and postd's job.
POSTD_TOKEN=$token POSTD_AUTHOR=$author node_client counts "$postd_url" "$((n_reset + 1))" ||
  ptest_die "Queue#getJobCounts() and /health/queue disagree"
stop_postd
ptest_say "passed"
