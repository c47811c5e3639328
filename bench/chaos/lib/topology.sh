# shellcheck shell=bash
# The chaos kit's topology (sourced by bench/chaos.sh after deploy/lib/common.sh):
# Redis (or a Sentinel group), PostgreSQL with PgBouncer in front, N postd
# instances (nginx in front when N > 1), each started with common.sh's
# functions.
#
# As root, three network namespaces of the run's own, joined by two veth
# pairs, so that a partition is a drop rule in one namespace:
#
#   app    postd, nginx, the load     10.77.1.1 ── 10.77.1.2   redis  Redis (+ replicas, sentinels)
#                                     10.77.2.1 ── 10.77.2.2   pg     PostgreSQL, PgBouncer
#
# The 10.77 addresses exist only inside the namespaces (the host sees no
# interface and no route of the kit's). Each service also listens on its
# namespace's 127.0.0.1, where the kit's own probes (sampler, drain, row
# dump) reach it whatever the partitions. Not root: everything on the
# host's 127.0.0.1, and no partitions.
#
# State (all under $chaos_tmp, removed at exit): data/<service>/ (the
# services' files), postd-N.{env,pid,port}, and the kit's flags.

chaos_ns_net_redis=10.77.1
chaos_ns_net_pg=10.77.2

chaos_say() { printf 'chaos: %s\n' "$*" >&2 2>/dev/null || true; }

# Milliseconds since the epoch.
chaos_now_ms() {
  local t=${EPOCHREALTIME/./}
  printf '%s\n' "${t:0:${#t}-3}"
}

# The namespace of ROLE (app, redis, pg) of this run.
chaos_ns() { printf '%s-%s\n' "$chaos_ns_prefix" "$1"; }

# chaos_in ROLE CMD...: run CMD in ROLE's namespace (on loopback: as is).
chaos_in() {
  local role=$1
  shift
  if ((chaos_netns)); then
    ip netns exec "$(chaos_ns "$role")" "$@"
  else
    "$@"
  fi
}

# chaos_exec_in ROLE: set chaos_exec to the words that run a command in
# ROLE's namespace (empty on loopback), for a command started in the
# background whose pid ($!) must be the command's own, not a subshell's.
chaos_exec_in() {
  chaos_exec=()
  ((chaos_netns == 0)) || chaos_exec=(ip netns exec "$(chaos_ns "$1")")
}

# chaos_fn_in ROLE FUNCTION ARGS...: call a function of deploy/lib/common.sh
# in ROLE's namespace (a bash that sources it; POSTD_SERVICE_USER is exported).
chaos_fn_in() {
  local role=$1
  shift
  if ((chaos_netns)); then
    # shellcheck disable=SC2016 # expanded by that bash
    chaos_in "$role" bash -c 'source "$1"; shift; "$@"' chaos-fn "$POSTD_REPO/deploy/lib/common.sh" "$@"
  else
    "$@"
  fi
}

# chaos_addr redis|pg: the address postd reaches that namespace's services
# at; chaos_addr app-redis|app-pg: the app namespace's end of that link.
chaos_addr() {
  ((chaos_netns)) || { printf '127.0.0.1\n'; return 0; }
  case $1 in
    redis) printf '%s.2\n' "$chaos_ns_net_redis" ;;
    pg) printf '%s.2\n' "$chaos_ns_net_pg" ;;
    app-redis) printf '%s.1\n' "$chaos_ns_net_redis" ;;
    app-pg) printf '%s.1\n' "$chaos_ns_net_pg" ;;
  esac
}

# chaos_port VAR: set VAR to a free port not handed out yet in this run
# (postd_free_port only sees listening sockets, and nothing listens yet).
chaos_port() {
  local _chaos_port # not VAR's name
  while :; do
    _chaos_port=$(postd_free_port) || return 1
    [[ " $chaos_ports_used " == *" $_chaos_port "* ]] || break
  done
  chaos_ports_used+=" $_chaos_port"
  printf -v "$1" '%s' "$_chaos_port"
}

# ---------------------------------------------------------------- namespaces

# What runs left whose runner is gone (killed with -9: no trap ran): their
# processes stopped through the pidfiles in their temp directory
# (/tmp/postd-chaos-<runner pid>.*), the directory removed, and their
# namespaces removed with whatever still runs in them.
chaos_remove_stale_runs() {
  local dir pid ns
  for dir in /tmp/postd-chaos-*.*; do
    [[ $dir =~ ^/tmp/postd-chaos-([0-9]+)\. && -d $dir ]] || continue
    pid=${BASH_REMATCH[1]}
    [[ ! -d /proc/$pid ]] || continue
    chaos_say "stopping what run $pid left (its runner is gone): $dir"
    chaos_stop_all_in "$dir"
    rm -rf -- "$dir"
  done
  ((EUID == 0)) || return 0
  while read -r ns _; do
    [[ $ns =~ ^postd-chaos-([0-9]+)-(app|redis|pg|probe)$ ]] || continue
    [[ ! -d /proc/${BASH_REMATCH[1]} ]] || continue
    chaos_say "removing namespace $ns (its runner is gone)"
    chaos_kill_namespace "$ns"
  done < <(ip netns list 2>/dev/null)
}

# Stop every process whose pidfile is in the run directory DIR.
chaos_stop_all_in() {
  local dir=$1 f pid i pids
  for f in "$dir"/stopped-*; do
    # shellcheck disable=SC2046 # a list of pids
    [[ ! -e $f ]] || kill -CONT $(cat "$f") 2>/dev/null || true
  done
  # SIGTERM to every instance first, so that they drain at the same time (a
  # second one would cut a drain short).
  pids=()
  for f in "$dir"/postd-*.pid; do
    pid=$(cat "$f" 2>/dev/null) || continue
    _postd_alive "$pid" postd && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    _postd_wait_gone "$pid" postd 30 || { chaos_say "postd (pid $pid) still runs 30 s after SIGTERM: killing it"; kill -KILL "$pid" 2>/dev/null; } || true
  done
  postd_stop_nginx "$dir/data/nginx" || true
  for i in 0 1 2; do postd_stop_sentinel "$dir/data/sentinel-$i" || true; done
  for i in 0 1 2; do postd_stop_redis "$dir/data/redis-$i" || true; done
  postd_stop_pgbouncer "$dir/data/pgbouncer" || true
  postd_stop_postgres "$dir/data/pg" || true
}

# Kill every process in namespace NS, then remove it.
chaos_kill_namespace() {
  local ns=$1 pids i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(ip netns pids "$ns" 2>/dev/null) || break
    [[ -n $pids ]] || break
    # shellcheck disable=SC2086 # a list of pids
    kill -CONT $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
    ((i < 10)) || chaos_say "namespace $ns: processes left: $pids"
  done
  ip netns del "$ns" 2>/dev/null || true
}

# The three namespaces and the two veth pairs (see the header).
chaos_create_namespaces() {
  local role net peer
  for role in app redis pg; do
    ip netns add "$(chaos_ns "$role")" || return 1
    chaos_namespaces+=("$(chaos_ns "$role")")
    ip -n "$(chaos_ns "$role")" link set lo up || return 1
  done
  for peer in redis pg; do
    net=chaos_ns_net_$peer
    net=${!net}
    ip -n "$(chaos_ns app)" link add "to-$peer" type veth peer name eth0 netns "$(chaos_ns "$peer")" &&
      ip -n "$(chaos_ns app)" addr add "$net.1/30" dev "to-$peer" &&
      ip -n "$(chaos_ns "$peer")" addr add "$net.2/30" dev eth0 &&
      ip -n "$(chaos_ns app)" link set "to-$peer" up &&
      ip -n "$(chaos_ns "$peer")" link set eth0 up || return 1
  done
}

# Remove the namespaces, killing whatever still runs in them.
chaos_remove_namespaces() {
  local ns
  for ns in "${chaos_namespaces[@]}"; do chaos_kill_namespace "$ns"; done
  chaos_namespaces=()
}

# ---------------------------------------------------------------- Redis

# The redis.conf lines of the scenario's `aof`.
chaos_aof_lines() {
  case $chaos_aof in
    always) printf '%s\n' "appendonly yes" "appendfsync always" ;;
    everysec) printf '%s\n' "appendonly yes" "appendfsync everysec" ;;
    off) printf '%s\n' "appendonly no" ;;
  esac
}

# The lines every Redis server of the run is started with (the template's,
# then these): the aof setting, the namespace address, and for a group
# postd_start_redis_group's rules (writes only while a replica keeps up).
chaos_redis_lines() {
  local addr
  addr=$(chaos_addr redis)
  chaos_aof_lines
  # In its namespace only the app namespace reaches it: no password needed.
  [[ $addr == 127.0.0.1 ]] || printf '%s\n' "bind 127.0.0.1 $addr" "protected-mode no"
  if ((chaos_sentinel)); then printf '%s\n' "min-replicas-to-write 1" "min-replicas-max-lag 10"; fi
}

# chaos_start_redis_server I [MASTER_PORT]: start server I (the single Redis
# is server 0) on its port, as a replica of MASTER_PORT when given.
chaos_start_redis_server() {
  local i=$1 master=${2:-} lines
  mapfile -t lines < <(chaos_redis_lines)
  [[ -z $master ]] || lines+=("replicaof $(chaos_addr redis) $master")
  chaos_fn_in redis postd_start_redis "$chaos_tmp/data/redis-$i" "${chaos_redis_ports[i]}" "${lines[@]}"
}

# chaos_start_sentinel I: sentinel I, watching the group's first master by
# the namespace address (what it hands postd), listening there too.
# postd_start_sentinel keeps an existing sentinel.conf: ours is written first.
chaos_start_sentinel() {
  local i=$1 dir addr
  dir=$chaos_tmp/data/sentinel-$i
  addr=$(chaos_addr redis)
  mkdir -p "$dir" || return 1
  _postd_render "$POSTD_REPO/deploy/redis-sentinel/sentinel.conf" "$dir/sentinel.conf" \
    DIR="$dir" PORT="${chaos_sentinel_ports[i]}" NAME="$chaos_sentinel_name" MASTER_HOST="$addr" \
    MASTER_PORT="${chaos_redis_ports[0]}" QUORUM=2 DOWN_AFTER_MS=5000 || return 1
  [[ $addr == 127.0.0.1 ]] || printf '%s\n' "bind 127.0.0.1 $addr" "protected-mode no" >>"$dir/sentinel.conf"
  chaos_fn_in redis postd_start_sentinel "$dir" "${chaos_sentinel_ports[i]}" "${chaos_redis_ports[0]}" \
    "$chaos_sentinel_name" 2 5000
}

# The single Redis, or a group as postd_start_redis_group runs one (a master,
# two replicas, three sentinels: quorum 2, down-after 5000 ms) with the
# scenario's aof and the namespace address.
chaos_start_redis() {
  local p i
  chaos_port p || return 1
  chaos_redis_ports=("$p")
  if ((chaos_sentinel == 0)); then
    chaos_start_redis_server 0
    return
  fi
  for i in 1 2; do chaos_port p && chaos_redis_ports[i]=$p || return 1; done
  for i in 0 1 2; do chaos_port p && chaos_sentinel_ports[i]=$p || return 1; done
  chaos_start_redis_server 0 || return 1
  for i in 1 2; do chaos_start_redis_server "$i" "${chaos_redis_ports[0]}" || return 1; done
  chaos_fn_in redis _postd_wait_replicas_online "${chaos_redis_ports[0]}" 2
  for i in 0 1 2; do chaos_start_sentinel "$i" || return 1; done
}

# The index of the Redis server that is the master now (a sentinel's
# answer; the single Redis: 0).
chaos_redis_master() {
  local reply port i j
  ((chaos_sentinel)) || { printf '0\n'; return 0; }
  for i in 0 1 2; do
    reply=$(chaos_in redis timeout 2 redis-cli -h 127.0.0.1 -p "${chaos_sentinel_ports[i]}" \
      SENTINEL get-master-addr-by-name "$chaos_sentinel_name" 2>/dev/null) || continue
    port=$(sed -n 2p <<<"$reply")
    for j in 0 1 2; do
      [[ ${chaos_redis_ports[j]} != "$port" ]] || { printf '%s\n' "$j"; return 0; }
    done
  done
  return 1
}

# Server I back after a kill or a stop: as the master if the sentinels still
# name it (back before down-after), else as a replica of the one they name.
chaos_restart_redis_server() {
  local i=$1 master
  master=$(chaos_redis_master) || master=$i
  if ((master == i)); then
    chaos_start_redis_server "$i"
  else
    chaos_start_redis_server "$i" "${chaos_redis_ports[master]}"
  fi
}

# ---------------------------------------------------------------- PostgreSQL

# PostgreSQL (fsync off: the machine does not crash here, and a kill -9 of
# PostgreSQL keeps what the OS has; synchronous_commit stays on, so no
# committed row is lost to it) and PgBouncer in front (transaction pooling),
# a database `postd`, migrated.
chaos_start_pg() {
  chaos_port chaos_pg_port && chaos_port chaos_bouncer_port || return 1
  chaos_start_postgres || return 1
  chaos_start_pgbouncer || return 1
  chaos_psql postgres -c 'CREATE DATABASE postd' >/dev/null || return 1
  chaos_in pg env -i PATH="$PATH" DATABASE_URL="postgresql://postgres@127.0.0.1:$chaos_pg_port/postd" \
    LOG_FORMAT=text "$chaos_build/postd" migrate >>"$chaos_out/logs/migrate.log" 2>&1 ||
    { chaos_say "postd migrate failed (see $chaos_out/logs/migrate.log)"; return 1; }
}

chaos_start_postgres() {
  chaos_fn_in pg postd_start_postgres "$chaos_tmp/data/pg" "$chaos_pg_port" fsync=off full_page_writes=off
}

chaos_start_pgbouncer() {
  local extra=()
  ((chaos_netns == 0)) || extra=("$(chaos_addr pg)")
  chaos_fn_in pg postd_start_pgbouncer "$chaos_tmp/data/pgbouncer" "$chaos_bouncer_port" "$chaos_pg_port" \
    "${extra[@]}"
}

# chaos_psql DATABASE ARGS...: psql straight to PostgreSQL (not through
# PgBouncer), on the pg namespace's loopback: partitions do not reach it.
chaos_psql() {
  local db=$1
  shift
  chaos_in pg env PGCONNECT_TIMEOUT=2 psql -X -q -w -h 127.0.0.1 -p "$chaos_pg_port" -U postgres -d "$db" -tA "$@"
}

# The postmaster's pid, and those of the processes it forked.
chaos_pg_pids() {
  local pm
  pm=$(_postd_pidfile_pid "$chaos_tmp/data/pg/postmaster.pid" postgres) || return 1
  printf '%s\n' "$pm"
  pgrep -P "$pm" || true
}

# ---------------------------------------------------------------- postd

# Instance N's environment, one NAME=VALUE a line: the topology's addresses,
# the fault API on with the run's token, a throttle that never limits the
# load, then the scenario's `env` directives (which win).
chaos_postd_env() {
  local n=$1 i sentinels=''
  printf '%s\n' "PATH=$PATH" "HOST=127.0.0.1" "PORT=$(<"$chaos_tmp/postd-$n.port")" \
    "DATABASE_URL=postgresql://postgres@$(chaos_addr pg):$chaos_bouncer_port/postd" \
    "JWT_SECRET=$chaos_jwt_secret" FAULTS=on "ADMIN_TOKEN=$chaos_admin_token" \
    THROTTLE_TTL=1000 THROTTLE_LIMIT=2147483647
  if ((chaos_sentinel)); then
    for i in 0 1 2; do sentinels+=${sentinels:+,}$(chaos_addr redis):${chaos_sentinel_ports[i]}; done
    printf '%s\n' "REDIS_SENTINELS=$sentinels" "REDIS_SENTINEL_NAME=$chaos_sentinel_name" ACK_REPLICAS=1
  else
    printf '%s\n' "REDIS_HOST=$(chaos_addr redis)" "REDIS_PORT=${chaos_redis_ports[0]}"
  fi
  ((${#chaos_env[@]} == 0)) || printf '%s\n' "${chaos_env[@]}"
}

# chaos_start_postd N: start instance N in the background (its own session:
# a Ctrl-C reaches the runner only, which stops it in order), its output
# appended to logs/postd-N.log. Returns once it answers /health/live.
chaos_start_postd() {
  local n=$1 env pid i
  mapfile -t env <"$chaos_tmp/postd-$n.env"
  chaos_exec_in app
  # From a subshell that ends at once: postd is no job of the runner's (no
  # "Killed" line from bash when the kit kills it).
  (
    "${chaos_exec[@]}" setsid env -i "${env[@]}" "$chaos_build/postd" serve \
      </dev/null >>"$chaos_out/logs/postd-$n.log" 2>&1 &
    printf '%s\n' "$!" >"$chaos_tmp/postd-$n.pid"
  )
  pid=$(<"$chaos_tmp/postd-$n.pid")
  for ((i = 0; i < 200; i++)); do
    _postd_alive "$pid" || break
    chaos_http GET "$n" /health/live >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  _postd_start_failed "postd $n (pid $pid) did not answer /health/live within 20 s" \
    "$chaos_out/logs/postd-$n.log"
}

# The pid of instance N when it runs.
chaos_postd_pid() {
  local pid
  pid=$(cat "$chaos_tmp/postd-$1.pid" 2>/dev/null) || return 1
  _postd_alive "$pid" postd || return 1
  printf '%s\n' "$pid"
}

# Stop instance N as an operator would (SIGTERM: it drains).
chaos_stop_postd() {
  local pid
  pid=$(chaos_postd_pid "$1") || return 0
  _postd_stop_pid "$pid" postd 30
}

# chaos_http METHOD N PATH [JSON]: a request to instance N (the admin token
# for /admin), prints the status code; fails when no answer came.
chaos_http() {
  local method=$1 n=$2 path=$3 body=${4:-} port args=()
  port=$(<"$chaos_tmp/postd-$n.port")
  [[ $path != /admin* ]] || args+=(-H "Authorization: Bearer $chaos_admin_token")
  [[ -z $body ]] || args+=(-H 'Content-Type: application/json' --data "$body")
  chaos_in app curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X "$method" "${args[@]}" \
    "http://127.0.0.1:$port$path"
}

# N instances, waited for until each is ready (Redis and PostgreSQL up), and
# nginx in front of them when N > 1. Sets chaos_entry_port (the load's).
chaos_start_instances() {
  local n i ports=() code port
  for ((n = 1; n <= chaos_instances; n++)); do
    chaos_port port || return 1
    printf '%s\n' "$port" >"$chaos_tmp/postd-$n.port"
    ports+=("$port")
    chaos_postd_env "$n" >"$chaos_tmp/postd-$n.env"
    chaos_start_postd "$n" || return 1
  done
  for ((n = 1; n <= chaos_instances; n++)); do
    for ((i = 0; i < 300; i++)); do
      code=$(chaos_http GET "$n" /health/ready) || true
      [[ $code == 200 ]] && break
      sleep 0.1
    done
    [[ $code == 200 ]] || { chaos_say "postd $n not ready after 30 s (/health/ready $code)"; return 1; }
  done
  chaos_entry_port=${ports[0]}
  ((chaos_instances > 1)) || return 0
  chaos_port chaos_entry_port || return 1
  chaos_fn_in app postd_start_nginx "$chaos_tmp/data/nginx" "$chaos_entry_port" "${ports[@]}"
}

# ---------------------------------------------------------------- all

chaos_topology_up() {
  mkdir -p "$chaos_tmp/data" || return 1
  if ((chaos_netns)); then chaos_create_namespaces || return 1; fi
  chaos_say "starting Redis$( ((chaos_sentinel)) && echo ' (master, 2 replicas, 3 sentinels)'), aof $chaos_aof"
  chaos_start_redis || return 1
  chaos_say "starting PostgreSQL and PgBouncer"
  chaos_start_pg || return 1
  chaos_say "starting $chaos_instances postd instance(s)$( ((chaos_instances > 1)) && echo ' behind nginx')"
  chaos_start_instances
}

# Everything down, in order (each step goes on after a failure), the
# services' logs kept in the output's logs/ and the data removed.
chaos_topology_down() {
  local f
  chaos_stop_all_in "$chaos_tmp"
  ((chaos_netns == 0)) || chaos_remove_namespaces
  for f in "$chaos_tmp"/data/*/*.log; do
    [[ -f $f ]] || continue
    cp -- "$f" "$chaos_out/logs/$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null || true
  done
}
