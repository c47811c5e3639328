# shellcheck shell=bash
# Shared functions of deploy/run.sh and deploy/test.sh: install, build, and
# private Redis / PostgreSQL / PgBouncer instances on 127.0.0.1.
#
# Source it from bash (it sets no shell options itself). Functions print
# "postd: ..." on stderr and return non-zero on failure; callers run with
# `set -euo pipefail`. Everything listens on 127.0.0.1 only.
#
# Tunables (environment):
#   POSTD_PG_BIN          PostgreSQL server binaries (/usr/lib/postgresql/15/bin)
#   POSTD_SERVICE_USER    non-root user that runs PostgreSQL and PgBouncer (postd)
#   POSTD_START_TIMEOUT   seconds to wait for Redis / PgBouncer to answer (10)
#   POSTD_PG_TIMEOUT      seconds to wait for PostgreSQL to start / stop (60)
#   POSTD_BUILD_JOBS      parallel build jobs (2)

POSTD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
POSTD_PG_BIN=${POSTD_PG_BIN:-/usr/lib/postgresql/15/bin}

POSTD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl procps
  iproute2 libcaf-dev libboost-dev libboost-system-dev libhiredis-dev
  libpqxx-dev libpq-dev nlohmann-json3-dev libgtest-dev libgmock-dev googletest
  libbenchmark-dev libcpp-jwt-dev libssl-dev libspdlog-dev libfmt-dev
  libcli11-dev libjemalloc-dev redis-server redis-tools postgresql postgresql-contrib
  postgresql-client pgbouncer wrk nodejs npm openssl acl lua-check clang-format
  clang-tidy clang libclang-rt-dev llvm nginx-light docker-compose python3-yaml
  nftables gnuplot-nox chromium prometheus
)
# nginx-light: the multi-instance test's load balancer; docker-compose and
# python3-yaml: the deploy kit's checks (`docker-compose config`, YAML), as
# there is no container engine here. nftables and gnuplot-nox: the chaos
# kit's partitions and its report's timeline (bench/chaos.sh).
# chromium: headless Chromium for the dashboard test
# (tests/integration/dashboard_test.sh).
# prometheus: promtool for the checks and unit tests of deploy/prometheus/
# (tests/lint/prometheus.sh) and the Prometheus server that scrapes a live
# postd in tests/integration/prometheus_test.sh (its system service is kept
# from starting, like redis-server's: the test runs its own on 127.0.0.1).
# clang, libclang-rt-dev (the sanitizer runtimes and libFuzzer) and llvm (its
# llvm-symbolizer puts names and lines in sanitizer reports): deploy/test.sh's
# sanitizer trees are built by Clang.

# ---------------------------------------------------------------- helpers

# A message never fails, so a clean-up that ignores SIGPIPE goes on when
# stderr is a closed pipe (`run.sh 2>&1 | tee log`, tee gone with Ctrl-C).
_postd_err() { printf 'postd: %s\n' "$*" >&2 2>/dev/null || true; }

# Print the last lines of a log file on stderr (for failed starts).
_postd_tail_log() {
  [[ -r $1 ]] || return 0
  printf 'postd: last lines of %s:\n' "$1" >&2
  tail -n "${2:-20}" "$1" | sed 's/^/    /' >&2
}

# A service that failed to start: MESSAGE, then the last lines of its LOG.
# Returns 1.
_postd_start_failed() {
  _postd_err "$1"
  _postd_tail_log "$2"
  return 1
}

# Absolute form of a path (it need not exist yet).
_postd_abspath() { realpath -m -- "$1"; }

# True when PID is a live (not zombie) process; with NAME, also its comm.
_postd_alive() {
  local pid=$1 name=${2:-} stat comm
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]] || return 1
  if [[ -n $name ]]; then
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
  fi
}

# The pid in a pidfile, when that process (named NAME) is alive.
_postd_pidfile_pid() {
  local file=$1 name=$2 pid
  [[ -r $file ]] || return 1
  read -r pid <"$file" || [[ -n ${pid:-} ]] || return 1
  _postd_alive "$pid" "$name" || return 1
  printf '%s\n' "$pid"
}

# Wait up to TIMEOUT s for process PID (named NAME) to be gone (or a zombie).
_postd_wait_gone() {
  local pid=$1 name=$2 timeout=$3 i
  kill -CONT "$pid" 2>/dev/null || true # in case a test SIGSTOPped it
  for ((i = 0; i < timeout * 10; i++)); do
    _postd_alive "$pid" "$name" || return 0
    sleep 0.1
  done
  return 1
}

# TERM a process, wait up to TIMEOUT s for it to go, then KILL it.
_postd_stop_pid() {
  local pid=$1 name=$2 timeout=${3:-20}
  kill -TERM "$pid" 2>/dev/null || return 0
  _postd_wait_gone "$pid" "$name" "$timeout" && return 0
  _postd_err "$name (pid $pid) ignored SIGTERM for ${timeout}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  _postd_wait_gone "$pid" "$name" 5 && return 0
  _postd_err "$name (pid $pid) survived SIGKILL"
  return 1
}

# True when some TCP socket on this machine uses local port PORT, in any
# state (a port to hand out must not even be in TIME_WAIT).
postd_port_busy() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Hant "( sport = :$port )" 2>/dev/null) ]] && return 0
  fi
  (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# True when something listens on TCP port PORT (any address).
postd_port_listening() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Hltn "( sport = :$port )" 2>/dev/null) ]] && return 0
  fi
  (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Fail with a clear message when something already listens on PORT. (Our
# servers bind with SO_REUSEADDR, so TIME_WAIT left by a restart is fine.)
_postd_require_free_port() {
  local port=$1 what=$2
  if postd_port_listening "$port"; then
    _postd_err "port $port on 127.0.0.1 is already in use; cannot start $what there"
    return 1
  fi
}

# Copy TEMPLATE to OUT replacing @KEY@ by VALUE for each KEY=VALUE argument.
_postd_render() {
  local template=$1 out=$2 text kv key value
  shift 2
  text=$(<"$template") || return 1
  for kv in "$@"; do
    key=${kv%%=*}
    value=${kv#*=}
    text=${text//"@$key@"/"$value"}
  done
  printf '%s\n' "$text" >"$out"
}

# Run a command as the service user (as is when we are not root), from /.
_postd_as_service_user() {
  (
    cd / || exit 1
    if ((EUID == 0)); then
      exec runuser -u "$POSTD_SERVICE_USER" -- "$@"
    else
      exec "$@"
    fi
  )
}

# Let the service user reach DIR (mktemp makes 0700 dirs; /root is 0700): on
# each ancestor it cannot traverse, a POSIX ACL entry grants search (x) to that
# user alone; modes stay, nobody else gains anything.
_postd_make_traversable() {
  local dir parents=() d
  ((EUID == 0)) || return 0
  dir=$(_postd_abspath "$1")
  d=$(dirname "$dir")
  _postd_as_service_user test -x "$d" 2>/dev/null && return 0
  while [[ $d != / ]]; do
    parents=("$d" "${parents[@]}")
    d=$(dirname "$d")
  done
  for d in "${parents[@]}"; do
    _postd_as_service_user test -x "$d" 2>/dev/null && continue
    if ! setfacl -m "u:$POSTD_SERVICE_USER:x" -- "$d"; then
      _postd_err "cannot let $POSTD_SERVICE_USER traverse $d (setfacl, package acl; a file system with ACLs):" \
        "put the data where $POSTD_SERVICE_USER can reach it"
      return 1
    fi
    _postd_err "let $POSTD_SERVICE_USER traverse $d (ACL u:$POSTD_SERVICE_USER:x)"
  done
}

# Create DIR owned by the service user, mode 0700, reachable by it.
_postd_service_dir() {
  local dir=$1
  mkdir -p "$dir" || return 1
  if ((EUID == 0)) && [[ $(stat -c %U "$dir") != "$POSTD_SERVICE_USER" ]]; then
    chown -R "$POSTD_SERVICE_USER:" "$dir" || return 1
  fi
  chmod 0700 "$dir" || return 1
  _postd_make_traversable "$dir"
}

# A Unix socket directory for DIR, or '' (TCP only) when DIR's path is too
# long for a socket name (108 bytes).
_postd_socket_dir() {
  if ((${#1} <= 80)); then printf '%s\n' "$1"; else printf '\n'; fi
}

# ---------------------------------------------------------------- install / build

# True when Debian package PKG is installed. A Node.js from elsewhere (e.g.
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm)
# counts for nodejs / npm when its command is there.
_postd_have_package() {
  local pkg=$1
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] && return 0
  case $pkg in
    npm) command -v npm >/dev/null 2>&1 ;;
    nodejs) command -v node >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

# Install the Debian packages the project needs, only when one is missing.
postd_install_packages() {
  local missing=() pkg rc=0
  for pkg in "${POSTD_PACKAGES[@]}"; do
    _postd_have_package "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if ((EUID != 0)); then
    _postd_err "missing packages (run as root to install them): ${missing[*]}"
    return 1
  fi
  _postd_err "installing ${missing[*]}"
  _postd_apt_install "${missing[@]}" >&2 || rc=$?
  if ((rc != 0)); then
    _postd_err "apt-get failed (exit $rc) installing: ${missing[*]}"
    return 1
  fi
}

# apt-get install PKG... with the packages' system services (redis-server,
# postgresql, pgbouncer) kept from starting: we run our own on our own ports.
# A subshell, so that its traps remove the policy-rc.d that does so whatever
# ends the install (apt failure, Ctrl-C, SIGTERM, SIGHUP) and the caller's
# traps stay as they are. One that was there before is left alone: ours is
# created only where none is, and removed only while it holds our pid.
_postd_apt_install() (
  local policy=/usr/sbin/policy-rc.d ours
  printf -v ours '#!/bin/sh\n# postd_install_packages (pid %s): no service starts during its install\nexit 101' \
    "$BASHPID"
  trap '[[ $(cat -- "$policy" 2>/dev/null) != "$ours" ]] || rm -f -- "$policy"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 131' QUIT
  trap 'exit 143' TERM
  set -C # no clobbering: create ours only where there is none
  if printf '%s\n' "$ours" 2>/dev/null >"$policy"; then chmod 0755 "$policy" || exit; fi
  set +C
  apt-get update || exit
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
)

# postd_configure [DIR [TYPE [CMAKE_ARGS...]]]: configure (Ninja) only.
postd_configure() {
  local dir=${1:-$POSTD_REPO/build/release} type=${2:-Release} gen=(-G Ninja)
  shift $(($# < 2 ? $# : 2))
  # A tree configured before keeps its generator (cmake refuses a change).
  [[ -f $dir/CMakeCache.txt ]] && gen=()
  cmake -S "$POSTD_REPO" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE="$type" "$@" ||
    { _postd_err "cmake configure failed in $dir"; return 1; }
}

# postd_build [DIR [TYPE [CMAKE_ARGS...]]]: configure (Ninja) and build.
postd_build() {
  local dir=${1:-$POSTD_REPO/build/release}
  postd_configure "$@" || return 1
  cmake --build "$dir" -j "${POSTD_BUILD_JOBS:-2}" ||
    { _postd_err "build failed in $dir"; return 1; }
}

# Ensure the non-root user that runs PostgreSQL and PgBouncer (they refuse
# root) and export its name as POSTD_SERVICE_USER. Not root: the current user.
postd_service_user() {
  if ((EUID != 0)); then
    POSTD_SERVICE_USER=${POSTD_SERVICE_USER:-$(id -un)}
    export POSTD_SERVICE_USER
    return 0
  fi
  POSTD_SERVICE_USER=${POSTD_SERVICE_USER:-postd}
  export POSTD_SERVICE_USER
  id -u "$POSTD_SERVICE_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$POSTD_SERVICE_USER" ||
    { _postd_err "cannot create system user $POSTD_SERVICE_USER"; return 1; }
}

# Print a TCP port that nothing on this machine uses, picked at random below
# the kernel's ephemeral range (so outgoing connections never take it).
postd_free_port() {
  local lo=20000 hi=32000 eph_lo p i
  if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
    ((eph_lo > lo + 1000 && eph_lo <= hi)); then
    hi=$((eph_lo - 1))
  fi
  for ((i = 0; i < 200; i++)); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    postd_port_busy "$p" && continue
    printf '%s\n' "$p"
    return 0
  done
  _postd_err "found no free TCP port in $lo-$hi"
  return 1
}

# ---------------------------------------------------------------- Redis

# postd_start_redis DIR PORT [redis.conf line ...]: a daemonized Redis on
# 127.0.0.1:PORT with AOF (everysec), noeviction and no RDB, files in DIR.
postd_start_redis() {
  local dir port timeout=${POSTD_START_TIMEOUT:-10} pid i reply line log_size
  [[ $# -ge 2 ]] || { _postd_err "usage: postd_start_redis DIR PORT [conf lines]"; return 2; }
  dir=$(_postd_abspath "$1")
  port=$2
  shift 2
  if pid=$(_postd_pidfile_pid "$dir/redis.pid" redis-server); then
    _postd_err "Redis already runs from $dir (pid $pid)"
    return 1
  fi
  _postd_require_free_port "$port" Redis || return 1
  mkdir -p "$dir" || return 1
  _postd_render "$POSTD_REPO/deploy/redis.conf" "$dir/redis.conf" DIR="$dir" PORT="$port" || return 1
  for line in "$@"; do printf '%s\n' "$line" >>"$dir/redis.conf"; done
  rm -f "$dir/redis.pid"
  log_size=$(stat -c %s "$dir/redis.log" 2>/dev/null) || log_size=0
  redis-server "$dir/redis.conf" >/dev/null ||
    { _postd_start_failed "redis-server failed to start" "$dir/redis.log"; return; }
  for ((i = 0; i < timeout * 10; i++)); do
    reply=$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) || true
    [[ $reply == PONG ]] && return 0
    # Gone again, e.g. it could not bind (says so in its log, this start's part).
    if tail -c +"$((log_size + 1))" "$dir/redis.log" 2>/dev/null | grep -qE 'aborting|Fatal|FATAL'; then
      break
    fi
    if [[ -s $dir/redis.pid ]] && ! _postd_pidfile_pid "$dir/redis.pid" redis-server >/dev/null; then
      break
    fi
    sleep 0.1
  done
  _postd_start_failed "Redis failed to start on 127.0.0.1:$port (waited up to ${timeout}s for PONG)" \
    "$dir/redis.log"
}

# postd_stop_redis DIR: stop the Redis started from DIR (AOF flushed on TERM).
postd_stop_redis() {
  local dir pid
  dir=$(_postd_abspath "$1")
  pid=$(_postd_pidfile_pid "$dir/redis.pid" redis-server) || return 0
  _postd_stop_pid "$pid" redis-server 30
}

# postd_start_nginx DIR PORT UPSTREAM_PORT...: the deploy kit's nginx
# (deploy/nginx.conf) on 127.0.0.1:PORT, in front of postd instances on
# 127.0.0.1:UPSTREAM_PORT (the first one stands for postd1, and so on), its
# logs, pid and temp files in DIR. Waits until it answers. The upstreams
# list exactly the ports given: with fewer than the file names (postd1..3),
# the others' lines are left out; with more, lines like the last one are
# added (the chaos kit runs 1 to 8 instances).
postd_start_nginx() {
  local dir port timeout=${POSTD_START_TIMEOUT:-10} i=1 up edits=() pid named
  [[ $# -ge 3 ]] || { _postd_err "usage: postd_start_nginx DIR PORT UPSTREAM_PORT..."; return 2; }
  dir=$(_postd_abspath "$1")
  port=$2
  shift 2
  if pid=$(_postd_pidfile_pid "$dir/nginx.pid" nginx); then
    _postd_err "nginx already runs from $dir (pid $pid)"
    return 1
  fi
  _postd_require_free_port "$port" nginx || return 1
  mkdir -p "$dir/temp" || return 1
  edits=(-e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$port;|"
    -e "s|access_log /dev/stdout|access_log $dir/access.log|"
    -e "s|^error_log stderr|error_log $dir/error.log|")
  named=$(sed -n 's/^ *server postd\([0-9]*\):3000.*/\1/p' "$POSTD_REPO/deploy/nginx.conf" | sort -n | tail -n 1)
  named=${named:-0}
  for ((i = named + 1; i <= $#; i++)); do # postdI: a copy of postd(I-1)'s line
    edits+=(-e "s|^\( *\)server postd$((i - 1)):3000\(.*\)$|&\n\1server postd$i:3000\2|M")
  done
  for ((i = $# + 1; i <= named; i++)); do edits+=(-e "/^ *server postd$i:3000/d"); done
  i=1
  for up in "$@"; do
    edits+=(-e "s|server postd$i:3000|server 127.0.0.1:$up|")
    i=$((i + 1))
  done
  # Temp files in DIR: the packaged paths belong to www-data.
  for up in client_body proxy fastcgi uwsgi scgi; do
    edits+=(-e "/^http {/a\\  ${up}_temp_path $dir/temp/$up;")
  done
  sed "${edits[@]}" "$POSTD_REPO/deploy/nginx.conf" >"$dir/nginx.conf" || return 1
  if grep -nE 'server postd[0-9]+:|listen 80;' "$dir/nginx.conf" >&2; then
    _postd_err "nginx: deploy/nginx.conf names more instances or ports than given (above)"
    return 1
  fi
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g "pid $dir/nginx.pid;" ||
    { _postd_start_failed "nginx failed to start" "$dir/error.log"; return; }
  for ((i = 0; i < timeout * 10; i++)); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/health/live" && return 0
    sleep 0.1
  done
  _postd_start_failed "nginx did not answer on 127.0.0.1:$port within ${timeout}s" "$dir/error.log"
}

# postd_stop_nginx DIR: stop the nginx started from DIR (QUIT: graceful).
postd_stop_nginx() {
  local dir pid
  dir=$(_postd_abspath "$1")
  pid=$(_postd_pidfile_pid "$dir/nginx.pid" nginx) || return 0
  kill -QUIT "$pid" 2>/dev/null || return 0
  _postd_wait_gone "$pid" nginx 10 || _postd_stop_pid "$pid" nginx 5
}

# postd_start_sentinel DIR PORT MASTER_PORT [NAME [QUORUM [DOWN_AFTER_MS]]]:
# start a Redis Sentinel on 127.0.0.1:PORT (deploy/redis-sentinel/
# sentinel.conf rendered into DIR) monitoring the master 127.0.0.1:MASTER_PORT
# as NAME (mymaster), with QUORUM (2) and DOWN_AFTER_MS (5000). Waits until
# it answers with the master's address.
postd_start_sentinel() {
  local dir port master_port name quorum down_after timeout=${POSTD_START_TIMEOUT:-10} pid i reply
  [[ $# -ge 3 ]] || { _postd_err "usage: postd_start_sentinel DIR PORT MASTER_PORT [NAME [QUORUM [DOWN_AFTER_MS]]]"; return 2; }
  dir=$(_postd_abspath "$1")
  port=$2 master_port=$3 name=${4:-mymaster} quorum=${5:-2} down_after=${6:-5000}
  if pid=$(_postd_pidfile_pid "$dir/sentinel.pid" redis-server); then
    _postd_err "a sentinel already runs from $dir (pid $pid)"
    return 1
  fi
  _postd_require_free_port "$port" "Redis Sentinel" || return 1
  mkdir -p "$dir" || return 1
  # Sentinel keeps what it learned in its file: a restart reuses it.
  if [[ ! -f $dir/sentinel.conf ]]; then
    _postd_render "$POSTD_REPO/deploy/redis-sentinel/sentinel.conf" "$dir/sentinel.conf" \
      DIR="$dir" PORT="$port" NAME="$name" MASTER_HOST=127.0.0.1 MASTER_PORT="$master_port" \
      QUORUM="$quorum" DOWN_AFTER_MS="$down_after" || return 1
  fi
  rm -f "$dir/sentinel.pid"
  redis-server "$dir/sentinel.conf" --sentinel >/dev/null ||
    { _postd_start_failed "redis-server --sentinel failed to start" "$dir/sentinel.log"; return; }
  for ((i = 0; i < timeout * 10; i++)); do
    reply=$(redis-cli -h 127.0.0.1 -p "$port" sentinel get-master-addr-by-name "$name" 2>/dev/null) || true
    [[ -n $reply ]] && return 0
    sleep 0.1
  done
  _postd_start_failed "Redis Sentinel failed to start on 127.0.0.1:$port (waited up to ${timeout}s)" \
    "$dir/sentinel.log"
}

# postd_stop_sentinel DIR: stop the sentinel started from DIR.
postd_stop_sentinel() {
  local dir pid
  dir=$(_postd_abspath "$1")
  pid=$(_postd_pidfile_pid "$dir/sentinel.pid" redis-server) || return 0
  _postd_stop_pid "$pid" redis-server 30
}

# The index (0, 1 or 2) of the server that was the master when the group in
# DIR last ran. Sentinel writes the master down at each failover (its
# `sentinel monitor` line, with the `config-epoch` it was elected in) and has
# the servers rewrite their redis.conf (`replicaof` gone on the promoted one):
# the address in the sentinel file with the highest epoch, mapped to a
# server through that run's ports (DIR/group.env); failing that, the first
# server whose redis.conf has no `replicaof`; for a new group, 0.
_postd_group_last_master() {
  local dir=$1 ports=() line i f port epoch best_port='' best_epoch=-1
  if [[ -r $dir/group.env ]]; then
    line=$(sed -n 's/^POSTD_GROUP_REDIS_PORTS="\(.*\)"$/\1/p' "$dir/group.env")
    read -ra ports <<<"$line"
  fi
  for i in 0 1 2; do
    f=$dir/sentinel-$i/sentinel.conf
    [[ -r $f ]] || continue
    port=$(awk '$1 == "sentinel" && $2 == "monitor" { print $5; exit }' "$f")
    epoch=$(awk '$1 == "sentinel" && $2 == "config-epoch" { print $4; exit }' "$f")
    [[ $port =~ ^[0-9]+$ ]] || continue
    [[ $epoch =~ ^[0-9]+$ ]] || epoch=0
    if ((epoch > best_epoch)); then best_epoch=$epoch best_port=$port; fi
  done
  if [[ -n $best_port ]]; then
    for i in 0 1 2; do
      [[ ${ports[i]:-} != "$best_port" ]] || { printf '%s\n' "$i"; return 0; }
    done
  fi
  for i in 0 1 2; do
    f=$dir/redis-$i/redis.conf
    [[ -r $f ]] || continue
    grep -qiE '^[[:space:]]*(replicaof|slaveof)[[:space:]]' "$f" || { printf '%s\n' "$i"; return 0; }
  done
  printf '0\n'
}

# Wait up to POSTD_START_TIMEOUT s until the master on PORT counts N replicas
# online (their first sync done): before that it refuses writes
# (min-replicas-to-write). Only warns when they take longer (a large data
# set): the group still comes up by itself.
_postd_wait_replicas_online() {
  local port=$1 n=$2 timeout=${POSTD_START_TIMEOUT:-10} i online
  for ((i = 0; i < timeout * 10; i++)); do
    online=$(redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null | grep -c '^slave[0-9]*:.*state=online') || true
    ((online >= n)) && return 0
    sleep 0.1
  done
  _postd_err "the master on 127.0.0.1:$port has ${online:-0} of $n replicas in sync after ${timeout}s; it takes writes once one is"
}

# postd_start_redis_group DIR [NAME]: a Redis group as Sentinel users run one
# (deploy/redis-sentinel/): a master and two replicas (deploy/redis.conf:
# AOF, noeviction; the master takes writes only while a replica is at most
# 10 s behind: min-replicas-to-write 1, min-replicas-max-lag 10) and three
# sentinels (quorum 2, down-after 5000 ms) watching them as NAME (mymaster),
# on 127.0.0.1, under DIR/{redis-0,redis-1,redis-2,sentinel-0,...}. Ports:
# free ones picked at random, or with POSTD_GROUP_BASE_PORT=B fixed ones:
# redis-0..2 on B..B+2, sentinel-0..2 on B+10..B+12. Writes DIR/group.env:
# REDIS_SENTINELS, REDIS_SENTINEL_NAME, the servers' ports in DIR order
# (POSTD_GROUP_REDIS_PORTS, POSTD_GROUP_SENTINEL_PORTS) and the master's
# (POSTD_GROUP_MASTER_PORT), to source. Returns once the master counts both
# replicas in sync (it takes writes). Stop it with postd_stop_redis_group.
#
# DIR may hold a group that ran before: its data is kept (AOF), the server
# that was the master when it stopped starts as the master again
# (_postd_group_last_master: after a failover that is no longer redis-0) and
# the other two as its replicas (they resynchronise from it), and the
# sentinels start from fresh configurations, so that nothing they learned
# last time (ports, replicas, other sentinels) outlives that run.
postd_start_redis_group() {
  local dir name base master i port master_port order sentinels='' redis_ports=() sentinel_ports=()
  local rules=("min-replicas-to-write 1" "min-replicas-max-lag 10")
  [[ $# -ge 1 ]] || { _postd_err "usage: postd_start_redis_group DIR [NAME]"; return 2; }
  dir=$(_postd_abspath "$1")
  name=${2:-mymaster}
  base=${POSTD_GROUP_BASE_PORT:-}
  if [[ -n $base ]]; then
    if ! [[ $base =~ ^[0-9]{1,5}$ ]] || ((10#$base < 1 || 10#$base + 12 > 65535)); then
      _postd_err "POSTD_GROUP_BASE_PORT must be a port from 1 to 65523 (got '$base')"
      return 2
    fi
    base=$((10#$base))
    for port in "$base" $((base + 1)) $((base + 2)) $((base + 10)) $((base + 11)) $((base + 12)); do
      _postd_require_free_port "$port" "the Redis group (POSTD_GROUP_BASE_PORT=$base)" || return 1
    done
  fi
  mkdir -p "$dir" || return 1
  master=$(_postd_group_last_master "$dir")
  ((master == 0)) || _postd_err "redis-$master was the group's master when it last ran: it starts as the master"
  rm -f "$dir/group.env" # this run's, once it is up
  order=("$master")
  for i in 0 1 2; do ((i == master)) || order+=("$i"); done
  for i in "${order[@]}"; do
    if [[ -n $base ]]; then port=$((base + i)); else port=$(postd_free_port) || return 1; fi
    if ((i == master)); then
      master_port=$port
      postd_start_redis "$dir/redis-$i" "$port" "${rules[@]}" || return 1
    else
      # A replica promoted later keeps the same rule.
      postd_start_redis "$dir/redis-$i" "$port" "replicaof 127.0.0.1 $master_port" "${rules[@]}" || return 1
    fi
    redis_ports[i]=$port
  done
  _postd_wait_replicas_online "$master_port" 2
  for i in 0 1 2; do
    if [[ -n $base ]]; then port=$((base + 10 + i)); else port=$(postd_free_port) || return 1; fi
    # postd_start_sentinel keeps an existing file: start from the template.
    _postd_pidfile_pid "$dir/sentinel-$i/sentinel.pid" redis-server >/dev/null ||
      rm -f "$dir/sentinel-$i/sentinel.conf"
    postd_start_sentinel "$dir/sentinel-$i" "$port" "$master_port" "$name" 2 5000 || return 1
    sentinel_ports+=("$port")
    sentinels+=${sentinels:+,}127.0.0.1:$port
  done
  printf 'REDIS_SENTINELS=%s\nREDIS_SENTINEL_NAME=%s\nPOSTD_GROUP_REDIS_PORTS="%s"\nPOSTD_GROUP_SENTINEL_PORTS="%s"\nPOSTD_GROUP_MASTER_PORT=%s\n' \
    "$sentinels" "$name" "${redis_ports[*]}" "${sentinel_ports[*]}" "$master_port" >"$dir/group.env"
}

# postd_stop_redis_group DIR: stop what postd_start_redis_group started.
postd_stop_redis_group() {
  local dir rc=0 i
  dir=$(_postd_abspath "$1")
  for i in 0 1 2; do postd_stop_sentinel "$dir/sentinel-$i" || rc=1; done
  for i in 0 1 2; do postd_stop_redis "$dir/redis-$i" || rc=1; done
  return "$rc"
}

# ---------------------------------------------------------------- PostgreSQL

# Lock files left by a postmaster killed with -9: PostgreSQL takes them for a
# live server while the dead one is an unreaped zombie (PID 1 here may not
# reap), so remove those whose process is gone.
_postd_pg_remove_stale_locks() {
  local dir=$1 f pid
  for f in "$dir/postmaster.pid" "$dir"/.s.PGSQL.*.lock; do
    [[ -f $f ]] || continue
    pid=$(head -n 1 "$f" 2>/dev/null) || true
    _postd_alive "${pid:-x}" postgres && continue
    rm -f "$f" "${f%.lock}"
  done
}

# postd_start_postgres DIR PORT [name=value ...]: PostgreSQL 15 with its data
# in DIR (initdb'd on first use: user postgres, trust auth, UTF8), listening on
# 127.0.0.1:PORT, max_connections 200. Settings given are kept in
# DIR/postd.conf and so also apply to later starts without them.
postd_start_postgres() {
  local dir port sock out setting pid
  [[ $# -ge 2 ]] || { _postd_err "usage: postd_start_postgres DIR PORT [name=value ...]"; return 2; }
  [[ -n ${POSTD_SERVICE_USER:-} ]] || postd_service_user || return 1
  dir=$(_postd_abspath "$1")
  port=$2
  shift 2
  if pid=$(_postd_pidfile_pid "$dir/postmaster.pid" postgres); then
    _postd_err "PostgreSQL already runs from $dir (pid $pid)"
    return 1
  fi
  _postd_pg_remove_stale_locks "$dir"
  _postd_require_free_port "$port" PostgreSQL || return 1
  _postd_service_dir "$dir" || return 1
  if [[ ! -f $dir/PG_VERSION ]]; then
    out=$(_postd_as_service_user "$POSTD_PG_BIN/initdb" -D "$dir" -U postgres \
      --auth=trust -E UTF8 --locale=C.UTF-8 2>&1) ||
      { printf '%s\n' "$out" >&2; _postd_err "initdb failed in $dir"; return 1; }
    printf "\ninclude_if_exists = 'postd.conf'\n" >>"$dir/postgresql.conf"
  fi
  if (($#)); then
    for setting in "$@"; do printf '%s\n' "$setting"; done >"$dir/postd.conf"
    ((EUID == 0)) && chown "$POSTD_SERVICE_USER:" "$dir/postd.conf"
  fi
  sock=$(_postd_socket_dir "$dir")
  if ! _postd_as_service_user "$POSTD_PG_BIN/pg_ctl" start -w -s -t "${POSTD_PG_TIMEOUT:-60}" \
    -D "$dir" -l "$dir/server.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c max_connections=200 -c unix_socket_directories='$sock'"; then
    _postd_start_failed "PostgreSQL failed to start on 127.0.0.1:$port" "$dir/server.log"
  fi
}

# postd_stop_postgres DIR: fast shutdown of the PostgreSQL running from DIR.
# (pg_ctl is not used: it takes a zombie postmaster for a live one.)
postd_stop_postgres() {
  local dir pid
  dir=$(_postd_abspath "$1")
  pid=$(_postd_pidfile_pid "$dir/postmaster.pid" postgres) || return 0
  # SIGINT is PostgreSQL's "fast" shutdown; SIGQUIT its "immediate" one.
  kill -INT "$pid" 2>/dev/null || return 0
  _postd_wait_gone "$pid" postgres "${POSTD_PG_TIMEOUT:-60}" && return 0
  _postd_err "PostgreSQL in $dir did not stop (fast): stopping it immediately"
  kill -QUIT "$pid" 2>/dev/null || return 0
  _postd_wait_gone "$pid" postgres 10 && return 0
  _postd_stop_pid "$pid" postgres 1
}

# postd_start_pg_standby DIR PORT PRIMARY_PORT: a streaming standby of the
# PostgreSQL on 127.0.0.1:PRIMARY_PORT, its data in DIR (pg_basebackup -R on
# first use: standby.signal and primary_conninfo, the primary's settings with
# it), on 127.0.0.1:PORT. The primary's initdb allows replication from
# loopback (trust). To make it synchronous, set synchronous_standby_names on
# the primary; to fail over, stop the primary and promote this one
# (SELECT pg_promote(), as pg_auto_failover or Patroni would).
postd_start_pg_standby() {
  local dir port primary_port out
  [[ $# -eq 3 ]] || { _postd_err "usage: postd_start_pg_standby DIR PORT PRIMARY_PORT"; return 2; }
  [[ -n ${POSTD_SERVICE_USER:-} ]] || postd_service_user || return 1
  dir=$(_postd_abspath "$1")
  port=$2
  primary_port=$3
  if [[ ! -f $dir/PG_VERSION ]]; then
    _postd_service_dir "$dir" || return 1
    out=$(_postd_as_service_user "$POSTD_PG_BIN/pg_basebackup" -h 127.0.0.1 \
      -p "$primary_port" -U postgres -D "$dir" -R -X stream -c fast 2>&1) ||
      { printf '%s\n' "$out" >&2; _postd_err "pg_basebackup from 127.0.0.1:$primary_port failed"; return 1; }
  fi
  postd_start_postgres "$dir" "$port"
}

# ---------------------------------------------------------------- PgBouncer

# postd_start_pgbouncer DIR PORT PG_PORT [ADDRESS]: PgBouncer (transaction
# mode, trust, any database name) on 127.0.0.1:PORT in front of
# 127.0.0.1:PG_PORT; with ADDRESS (an IPv4 address of this machine or
# network namespace, as the chaos kit's), on ADDRESS:PORT too.
postd_start_pgbouncer() {
  local dir port pg_port address timeout=${POSTD_START_TIMEOUT:-10} pid i out
  [[ $# -eq 3 || $# -eq 4 ]] || { _postd_err "usage: postd_start_pgbouncer DIR PORT PG_PORT [ADDRESS]"; return 2; }
  [[ -n ${POSTD_SERVICE_USER:-} ]] || postd_service_user || return 1
  dir=$(_postd_abspath "$1")
  port=$2
  pg_port=$3
  address=${4:-}
  if pid=$(_postd_pidfile_pid "$dir/pgbouncer.pid" pgbouncer); then
    _postd_err "PgBouncer already runs from $dir (pid $pid)"
    return 1
  fi
  _postd_require_free_port "$port" PgBouncer || return 1
  _postd_service_dir "$dir" || return 1
  _postd_render "$POSTD_REPO/deploy/pgbouncer.ini" "$dir/pgbouncer.ini" DIR="$dir" \
    PORT="$port" PG_PORT="$pg_port" SOCKET_DIR="$(_postd_socket_dir "$dir")" || return 1
  if [[ -n $address ]]; then
    sed -i "s|^listen_addr = 127.0.0.1$|listen_addr = 127.0.0.1,$address|" "$dir/pgbouncer.ini" || return 1
    grep -q "^listen_addr = 127.0.0.1,$address$" "$dir/pgbouncer.ini" ||
      { _postd_err "deploy/pgbouncer.ini has no 'listen_addr = 127.0.0.1' line to add $address to"; return 1; }
  fi
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  if ((EUID == 0)); then chown "$POSTD_SERVICE_USER:" "$dir/pgbouncer.ini" "$dir/userlist.txt" || return 1; fi
  rm -f "$dir/pgbouncer.pid"
  out=$(_postd_as_service_user pgbouncer -d -q "$dir/pgbouncer.ini" 2>&1) ||
    { printf '%s\n' "$out" >&2; _postd_start_failed "pgbouncer failed to start" "$dir/pgbouncer.log"; return; }
  for ((i = 0; i < timeout * 10; i++)); do
    if PGCONNECT_TIMEOUT=2 psql -X -q -w -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -tAc 'select 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  _postd_start_failed "PgBouncer on 127.0.0.1:$port did not serve 'select 1' within ${timeout}s" \
    "$dir/pgbouncer.log"
}

# postd_stop_pgbouncer DIR: stop the PgBouncer started from DIR.
postd_stop_pgbouncer() {
  local dir pid
  dir=$(_postd_abspath "$1")
  pid=$(_postd_pidfile_pid "$dir/pgbouncer.pid" pgbouncer) || return 0
  _postd_stop_pid "$pid" pgbouncer 10
}
