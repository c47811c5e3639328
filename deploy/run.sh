#!/usr/bin/env bash
# The run command (SPEC §1): installs what is missing, builds Release, starts
# a private Redis and PostgreSQL with their data under <repo>/.data/, migrates,
# prints a development token and curl lines, and serves (PORT, default 3000).
# Ctrl-C (or SIGTERM) stops postd, then Redis and PostgreSQL. Run again, it
# reuses .data/.
#
# Environment: POSTD_RUN_REDIS_PORT (6390), POSTD_RUN_PG_PORT (5440),
# POSTD_BUILD_DIR (build/release), POSTD_SKIP_BUILD=1 (use the existing build). DATABASE_URL, REDIS_HOST and REDIS_PORT are
# set to the private services; JWT_SECRET, PORT, HOST and every other postd
# variable are taken from the environment when set (JWT_SECRET otherwise from
# .data/jwt-secret, generated once).
#
# POSTD_RUN_REDIS picks the Redis: `single` (the default: one server, data in
# .data/redis) or `sentinel`: a group as Sentinel users run one
# (postd_start_redis_group: a master and two replicas with AOF, noeviction,
# min-replicas-to-write 1, min-replicas-max-lag 10, and three sentinels,
# quorum 2, watching them as REDIS_SENTINEL_NAME, default mymaster), data in
# .data/redis-group, on fixed ports from POSTD_RUN_REDIS_GROUP_PORT (6400):
# the servers redis-0..2 on 6400..6402, the sentinels on 6410..6412. postd
# then finds the master through the sentinels (REDIS_SENTINELS; REDIS_HOST
# and REDIS_PORT are unset) and answers 202 once a replica has the job
# (ACK_REPLICAS=1 unless set). Run again, the group keeps its data, and the
# server that was the master when it stopped (another one after a failover)
# starts as the master again, the others as its replicas; the sentinels
# start from fresh configurations each time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib/common.sh
source deploy/lib/common.sh

build_dir=${POSTD_BUILD_DIR:-build/release}
data_dir=$POSTD_REPO/.data
redis_dir=$data_dir/redis
pg_dir=$data_dir/postgres
redis_port=${POSTD_RUN_REDIS_PORT:-6390}
redis_mode=${POSTD_RUN_REDIS:-single}
group_dir=$data_dir/redis-group
group_port=${POSTD_RUN_REDIS_GROUP_PORT:-6400}
pg_port=${POSTD_RUN_PG_PORT:-5440}
http_port=${PORT:-3000}
postd_pid=
postd_rc=0
started_redis=0
started_group=0
started_pg=0

# Stop postd (it drains on SIGTERM within SHUTDOWN_GRACE_MS) and record its
# exit status in postd_rc.
stop_postd() {
  [[ -n $postd_pid ]] || return 0
  local grace_s i
  grace_s=$(((${SHUTDOWN_GRACE_MS:-10000} + 999) / 1000 + 5))
  kill -TERM "$postd_pid" 2>/dev/null || true
  for ((i = 0; i < grace_s * 10; i++)); do
    _postd_alive "$postd_pid" || break
    sleep 0.1
  done
  if _postd_alive "$postd_pid"; then
    _postd_err "postd did not stop within ${grace_s}s: killing it"
    kill -KILL "$postd_pid" 2>/dev/null || true
  fi
  postd_rc=0
  wait "$postd_pid" 2>/dev/null || postd_rc=$?
  postd_pid=
}

# Neither a second Ctrl-C nor a closed stdout / stderr may cut the clean-up
# short: `run.sh | tee log` loses tee with the Ctrl-C, and a message would
# then end the script by SIGPIPE before it stops the services. With SIGPIPE
# ignored a write there just fails, and _postd_err ignores that.
cleanup() {
  local rc=$?
  trap '' INT TERM PIPE
  stop_postd
  ((started_redis == 0)) || postd_stop_redis "$redis_dir" || rc=1
  ((started_group == 0)) || postd_stop_redis_group "$group_dir" || rc=1
  ((started_pg == 0)) || postd_stop_postgres "$pg_dir" || rc=1
  ((started_redis + started_group + started_pg == 0)) || _postd_err stopped
  exit "$rc"
}
trap cleanup EXIT
# On Ctrl-C / SIGTERM once postd serves: end with postd's own exit status (0
# after a clean drain); before that, with the usual 128 + signal.
on_signal() {
  [[ -n $postd_pid ]] || exit "$1"
  trap '' PIPE # as in cleanup
  stop_postd
  exit "$postd_rc"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

jwt_secret() {
  local file=$data_dir/jwt-secret
  if [[ ! -s $file ]]; then
    (
      umask 077
      if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex 32
      else
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
        echo
      fi >"$file"
    )
  fi
  tr -d '[:space:]' <"$file"
}

# POSTD_RUN_REDIS and POSTD_RUN_REDIS_GROUP_PORT, checked before anything
# is installed, built or started.
check_redis_mode() {
  case $redis_mode in
    single) ;;
    sentinel)
      if ! [[ $group_port =~ ^[0-9]{1,5}$ ]] || ((10#$group_port < 1 || 10#$group_port + 12 > 65535)); then
        _postd_err "POSTD_RUN_REDIS_GROUP_PORT must be a port from 1 to 65523 (got '$group_port')"
        exit 2
      fi
      group_port=$((10#$group_port))
      ;;
    *)
      _postd_err "POSTD_RUN_REDIS must be single (one Redis, the default) or sentinel (a master, two replicas and three sentinels); got '$redis_mode'"
      exit 2
      ;;
  esac
}

check_ports() {
  local port what var i redis=("Redis:$redis_port:POSTD_RUN_REDIS_PORT")
  if [[ $redis_mode == sentinel ]]; then
    redis=()
    for i in 0 1 2 10 11 12; do
      redis+=("the Redis group:$((group_port + i)):POSTD_RUN_REDIS_GROUP_PORT")
    done
  fi
  for what in "${redis[@]}" "PostgreSQL:$pg_port:POSTD_RUN_PG_PORT" "postd:$http_port:PORT"; do
    IFS=: read -r what port var <<<"$what"
    if postd_port_listening "$port"; then
      _postd_err "port $port is already in use (needed for $what; set $var to use another)"
      return 1
    fi
  done
}

create_database() {
  local psql=(psql -X -q -w -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tA)
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'postd'") ]]; then
    "${psql[@]}" -c 'CREATE DATABASE postd'
    printf 'postd: created database postd\n' >&2
  fi
}

# The Redis lines of the hints: the single server, or the group's ports and
# how to try a failover.
redis_hints() {
  local port replicas='' sentinel
  if [[ $redis_mode == single ]]; then
    printf 'postd: Redis 127.0.0.1:%s\n' "$redis_port"
    return
  fi
  for port in $POSTD_GROUP_REDIS_PORTS; do
    [[ $port == "$POSTD_GROUP_MASTER_PORT" ]] || replicas+=" 127.0.0.1:$port"
  done
  sentinel=${POSTD_GROUP_SENTINEL_PORTS%% *}
  cat <<EOF
postd: Redis group $REDIS_SENTINEL_NAME: master 127.0.0.1:$POSTD_GROUP_MASTER_PORT, replicas$replicas
postd: sentinels $REDIS_SENTINELS (ACK_REPLICAS=$ACK_REPLICAS)
postd: try a failover: redis-cli -p $sentinel SENTINEL FAILOVER $REDIS_SENTINEL_NAME
postd: the master now: redis-cli -p $sentinel SENTINEL GET-MASTER-ADDR-BY-NAME $REDIS_SENTINEL_NAME
EOF
}

print_usage_hints() {
  local token=$1 host=127.0.0.1 redis_what=Redis
  case ${HOST:-0.0.0.0} in 0.0.0.0 | :: | '') ;; *) host=$HOST ;; esac
  [[ $host != *:* ]] || host="[$host]"
  [[ $redis_mode == single ]] || redis_what='the Redis group'
  cat <<EOF

$(redis_hints)
postd: PostgreSQL 127.0.0.1:$pg_port (database postd), data in $data_dir
postd: development token (sub dev-user, valid 24 h):
$token

Try:
curl -i -X POST http://$host:$http_port/v1/post/create -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"content":"hello postd"}'
curl -s http://$host:$http_port/health/queue

postd: serving on ${HOST:-0.0.0.0}:$http_port; Ctrl-C stops postd, $redis_what and PostgreSQL.

EOF
}

# The single Redis or the group, and postd's Redis settings for it.
start_redis() {
  if [[ $redis_mode == single ]]; then
    started_redis=1
    postd_start_redis "$redis_dir" "$redis_port"
    export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
    unset REDIS_SENTINELS
    return
  fi
  started_group=1
  POSTD_GROUP_BASE_PORT=$group_port postd_start_redis_group "$group_dir" "${REDIS_SENTINEL_NAME:-mymaster}"
  # Written by postd_start_redis_group.
  # shellcheck source=/dev/null
  source "$group_dir/group.env"
  export REDIS_SENTINELS REDIS_SENTINEL_NAME
  unset REDIS_HOST REDIS_PORT REDIS_SENTINEL_PASSWORD # the sentinels have none
  export ACK_REPLICAS=${ACK_REPLICAS:-1}
}

main() {
  local bin=$build_dir/postd token
  check_redis_mode
  postd_install_packages
  [[ ${POSTD_SKIP_BUILD:-0} == 1 ]] || postd_build "$build_dir" Release
  [[ -x $bin ]] || { _postd_err "$bin was not built"; return 1; }
  postd_service_user

  mkdir -p "$data_dir"
  # Left running by an earlier run that was killed with -9: they are ours.
  postd_stop_redis "$redis_dir"
  postd_stop_redis_group "$group_dir"
  postd_stop_postgres "$pg_dir"
  check_ports

  start_redis
  started_pg=1
  postd_start_postgres "$pg_dir" "$pg_port"
  create_database

  export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/postd"
  unset REDIS_PASSWORD # the private Redis has none
  JWT_SECRET=${JWT_SECRET:-$(jwt_secret)}
  export JWT_SECRET
  # Attachments beside the services' data, unless told otherwise.
  export STORAGE_DIR=${STORAGE_DIR:-$data_dir/files}

  "$bin" migrate
  token=$("$bin" token --sub dev-user --ttl 86400)
  print_usage_hints "$token"

  # In the background so that the traps run as soon as a signal arrives.
  "$bin" serve &
  postd_pid=$!
  postd_rc=0
  wait "$postd_pid" || postd_rc=$?
  postd_pid=
  return "$postd_rc"
}

main "$@"
