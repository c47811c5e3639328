# shellcheck shell=bash
# The chaos kit's faults (sourced by bench/chaos.sh after topology.sh): the
# schedule of a scenario's `at T ...` events, each action, and the heal at
# the end of the load. Every action appends what it did to events.csv
# (`t_ms,action,target,detail`, t_ms measured from t0): the directive's own
# action when it is applied, and `start` when a process killed or restarted
# serves again. No field holds a comma.
#
# Targets: `postd N`, `redis` (the single Redis; with `sentinel on` the
# server that is the master at that moment), `pg` (the postmaster and every
# process it forked), `pgbouncer`.

chaos_restart_after_kill_s=3

# chaos_event ACTION TARGET DETAIL [AT_MS]: one line of events.csv, and on
# stderr; AT_MS (epoch ms, default now) is when the action began, e.g.
# before the fault API's answers came.
chaos_event() {
  local t detail=${3//,/;}
  t=$((${4:-$(chaos_now_ms)} - chaos_t0))
  printf '%s,%s,%s,%s\n' "$t" "$1" "$2" "$detail" >>"$chaos_out/events.csv"
  chaos_say "$(printf 't=%d.%03ds %s %s: %s' $((t / 1000)) $((t % 1000)) "$1" "$2" "$detail")"
}

# True once the run is being torn down, or its runner is gone (killed with
# -9: no trap ran): a pending action starts nothing, the sampler ends. ($$
# is the runner's pid in its subshells too.)
chaos_stopping() { [[ -e $chaos_tmp/stopping ]] || ! kill -0 "$$" 2>/dev/null; }

# Milliseconds as an argument of sleep.
chaos_secs() { printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000)); }

# ---------------------------------------------------------------- schedule

# Runs in the background from t0: each event at its time, in a job of its
# own (a restart that waits for PostgreSQL never delays the next event).
# Returns once every job has ended.
chaos_schedule() {
  local line at ms now
  set +e # an action that fails says so in events.csv; the others still run
  for line in "${chaos_events[@]}"; do
    read -r at _ <<<"$line"
    ms=$(awk -v s="$at" 'BEGIN { printf "%d", s * 1000 + 0.5 }')
    now=$(chaos_now_ms)
    ((now >= chaos_t0 + ms)) || sleep "$(chaos_secs $((chaos_t0 + ms - now)))"
    chaos_stopping && break
    chaos_apply "${line#* }" &
    printf '%s\n' "$!" >>"$chaos_tmp/jobs"
  done
  wait
}

# chaos_apply "ACTION ARGS...": one event, as the plan normalised it.
chaos_apply() {
  local words
  read -ra words <<<"$1"
  case ${words[0]} in
    kill) chaos_do_kill "${words[@]:1}" ;;
    stop) chaos_do_stop "${words[@]:1}" ;;
    cont) chaos_do_cont "${words[@]:1}" ;;
    restart) chaos_do_restart "${words[@]:1}" ;;
    delay) chaos_do_delay "${words[1]}" "${words[2]}" ;;
    heal) chaos_do_heal "${words[1]}" ;;
    partition) chaos_do_partition "${words[1]}" ;;
    faults) chaos_do_faults "${words[@]:1}" ;;
    failover) chaos_do_failover ;;
    *) chaos_event error "${words[0]}" "unknown action in the plan: $1" ;;
  esac
}

# ---------------------------------------------------------------- processes

# chaos_pids TARGET [N]: the pids a signal for TARGET goes to.
chaos_pids() {
  local master
  case $1 in
    postd) chaos_postd_pid "$2" ;;
    redis)
      master=$(chaos_redis_master) || return 1
      _postd_pidfile_pid "$chaos_tmp/data/redis-$master/redis.pid" redis-server
      ;;
    pg) chaos_pg_pids ;;
    pgbouncer) _postd_pidfile_pid "$chaos_tmp/data/pgbouncer/pgbouncer.pid" pgbouncer ;;
  esac
}

# chaos_start TARGET [N] [I]: start TARGET again (redis: server I) and note it.
chaos_start() {
  local target=$1 n=${2:-} i=${3:-0} started name=$1 ok=0 took
  chaos_stopping && return 0
  started=$(chaos_now_ms)
  case $target in
    postd) name="postd $n" && chaos_start_postd "$n" && chaos_reapply_delays "$n" && ok=1 ;;
    redis) name=redis && chaos_restart_redis_server "$i" && ok=1 ;;
    pg) chaos_start_postgres && ok=1 ;;
    pgbouncer) chaos_start_pgbouncer && ok=1 ;;
  esac
  took=$(($(chaos_now_ms) - started))
  if ((ok)); then
    chaos_event start "$name" "serving again (the start took $((took / 1000)).$((took % 1000 / 100)) s)"
  else
    chaos_event start "$name" "FAILED to start (see $chaos_out/logs)"
  fi
}

# kill -9, then the same start 3 s later (same port, same data).
chaos_do_kill() {
  local target=$1 n=${2:-} name=$1 pids pid at i=0
  [[ $target != postd ]] || name="postd $n"
  [[ $target != redis ]] || i=$(chaos_redis_master) || i=0
  pids=$(chaos_pids "$target" "$n") || { chaos_event kill "$name" "not running: nothing to kill"; return 0; }
  at=$(chaos_now_ms)
  # shellcheck disable=SC2086 # a list of pids
  kill -KILL $pids 2>/dev/null || true
  chaos_event kill "$name" "SIGKILL to pid $(echo $pids)$([[ $target != redis ]] || ((chaos_sentinel == 0)) || echo " (redis-$i: the master)")" "$at"
  for pid in $pids; do _postd_wait_gone "$pid" "" 10 || true; done
  sleep "$chaos_restart_after_kill_s"
  chaos_start "$target" "$n" "$i"
}

chaos_stopped_file() { printf '%s/stopped-%s%s\n' "$chaos_tmp" "$1" "${2:+-$2}"; }

chaos_do_stop() {
  local target=$1 n=${2:-} name=$1 pids at
  [[ $target != postd ]] || name="postd $n"
  pids=$(chaos_pids "$target" "$n") || { chaos_event stop "$name" "not running: nothing to stop"; return 0; }
  at=$(chaos_now_ms)
  # shellcheck disable=SC2086 # a list of pids
  kill -STOP $pids 2>/dev/null || true
  printf '%s\n' $pids >>"$(chaos_stopped_file "$target" "$n")"
  chaos_event stop "$name" "SIGSTOP to pid $(echo $pids)" "$at"
}

# SIGCONT to what `stop` stopped (with Sentinel, the server stopped then,
# whichever is the master now).
chaos_do_cont() {
  local target=$1 n=${2:-} name=$1 file pids at
  [[ $target != postd ]] || name="postd $n"
  file=$(chaos_stopped_file "$target" "$n")
  pids=$(cat "$file" 2>/dev/null) || { chaos_event cont "$name" "was not stopped"; return 0; }
  rm -f "$file"
  at=$(chaos_now_ms)
  # shellcheck disable=SC2086 # a list of pids
  kill -CONT $pids 2>/dev/null || true
  chaos_event cont "$name" "SIGCONT to pid $(echo $pids)" "$at"
}

# A clean restart: postd SIGTERM (it drains), Redis SIGTERM (AOF flushed),
# PostgreSQL fast shutdown, PgBouncer SIGTERM; then the same start.
chaos_do_restart() {
  local target=$1 n=${2:-} name=$1 i=0
  [[ $target != postd ]] || name="postd $n"
  chaos_event restart "$name" "clean stop then start"
  case $target in
    postd) chaos_stop_postd "$n" ;;
    redis)
      i=$(chaos_redis_master) || i=0
      postd_stop_redis "$chaos_tmp/data/redis-$i"
      ;;
    pg) postd_stop_postgres "$chaos_tmp/data/pg" ;;
    pgbouncer) postd_stop_pgbouncer "$chaos_tmp/data/pgbouncer" ;;
  esac
  chaos_start "$target" "$n" "$i"
}

# ---------------------------------------------------------------- fault API

# chaos_put_faults JSON: PUT /admin/faults on every instance; prints each
# one's status ("postd 1: 200; postd 2: none").
chaos_put_faults() {
  local n code out=''
  for ((n = 1; n <= chaos_instances; n++)); do
    code=$(chaos_http PUT "$n" /admin/faults "$1") || code=none
    out+="${out:+; }postd $n: $code"
  done
  printf '%s\n' "$out"
}

# delay redis|pg MS: postd waits MS before each call to it (redis_delay_ms,
# db_delay_ms), until `heal`. Kept for instances started later.
chaos_delay_key() { [[ $1 == redis ]] && echo redis_delay_ms || echo db_delay_ms; }

chaos_do_delay() {
  local target=$1 ms=$2 key at
  key=$(chaos_delay_key "$target")
  printf '%s\n' "$ms" >"$chaos_tmp/delay-$target"
  at=$(chaos_now_ms)
  chaos_event delay "$target" "$key=$ms: $(chaos_put_faults "{\"$key\":$ms}")" "$at"
}

# A restarted instance gets the delays still in force.
chaos_reapply_delays() {
  local target ms key
  for target in redis pg; do
    ms=$(cat "$chaos_tmp/delay-$target" 2>/dev/null) || continue
    key=$(chaos_delay_key "$target")
    chaos_http PUT "$1" /admin/faults "{\"$key\":$ms}" >/dev/null || true
  done
  return 0
}

# faults k=v...: one PUT with the pairs as JSON numbers (`for` included).
chaos_do_faults() {
  local kv json='' at
  for kv in "$@"; do json+="${json:+,}\"${kv%%=*}\":${kv#*=}"; done
  at=$(chaos_now_ms)
  chaos_event faults all "$* => $(chaos_put_faults "{$json}")" "$at"
}

# ---------------------------------------------------------------- network

# partition redis|pg: in that namespace, drop every packet from or to the
# app namespace (postd, nginx, the load); no reset is sent, as in a real
# partition. The kit's own probes use the namespace's loopback.
chaos_do_partition() {
  local target=$1 app at
  app=$(chaos_addr "app-$target")
  at=$(chaos_now_ms)
  chaos_in "$target" nft -f - <<EOF
table inet postd_chaos
delete table inet postd_chaos
table inet postd_chaos {
  chain input { type filter hook input priority 0; policy accept; ip saddr $app drop; }
  chain output { type filter hook output priority 0; policy accept; ip daddr $app drop; }
}
EOF
  touch "$chaos_tmp/partition-$target"
  chaos_event partition "$target" "nftables drop to and from $app in $(chaos_ns "$target")" "$at"
}

chaos_unpartition() {
  [[ -e $chaos_tmp/partition-$1 ]] || return 1
  chaos_in "$1" nft delete table inet postd_chaos 2>/dev/null || true
  rm -f "$chaos_tmp/partition-$1"
}

# heal redis|pg: the delay back to 0 and the partition removed.
chaos_do_heal() {
  local target=$1 key what='' at
  key=$(chaos_delay_key "$target")
  at=$(chaos_now_ms)
  ! chaos_unpartition "$target" || what='partition removed; '
  rm -f "$chaos_tmp/delay-$target"
  chaos_event heal "$target" "$what$key=0: $(chaos_put_faults "{\"$key\":0}")" "$at"
}

# failover redis: SENTINEL FAILOVER at the first sentinel that answers.
chaos_do_failover() {
  local master i reply at
  master=$(chaos_redis_master) || master='?'
  at=$(chaos_now_ms)
  for i in 0 1 2; do
    reply=$(chaos_in redis timeout 5 redis-cli -h 127.0.0.1 -p "${chaos_sentinel_ports[i]}" \
      SENTINEL FAILOVER "$chaos_sentinel_name" 2>&1) && break
  done
  chaos_event failover redis "SENTINEL FAILOVER at sentinel-$i (master was redis-$master): ${reply//$'\n'/ }" "$at"
}

# ---------------------------------------------------------------- the end

# After the load: everything stopped continues, partitions and faults go,
# and whatever is down (a restart that failed) is started, so the queue can
# drain. One `heal all` line, and a line per process found down.
chaos_heal_all() {
  local f what=() n i at
  at=$(chaos_now_ms)
  for f in "$chaos_tmp"/stopped-*; do
    [[ -e $f ]] || continue
    # shellcheck disable=SC2046 # a list of pids
    kill -CONT $(cat "$f") 2>/dev/null || true
    what+=("${f##*/stopped-} continued")
    rm -f "$f"
  done
  for f in redis pg; do
    ! chaos_unpartition "$f" || what+=("$f partition removed")
  done
  rm -f "$chaos_tmp"/delay-*
  for ((n = 1; n <= chaos_instances; n++)); do chaos_http DELETE "$n" /admin/faults >/dev/null || true; done
  what+=("faults cleared")
  chaos_event heal all "end of the load: $(IFS=';'; echo "${what[*]}")" "$at"
  for ((n = 1; n <= chaos_instances; n++)); do
    chaos_postd_pid "$n" >/dev/null || chaos_start postd "$n"
  done
  for i in 0 1 2; do
    [[ -d $chaos_tmp/data/redis-$i ]] || continue
    _postd_pidfile_pid "$chaos_tmp/data/redis-$i/redis.pid" redis-server >/dev/null || chaos_start redis "" "$i"
  done
  chaos_pg_pids >/dev/null || chaos_start pg
  _postd_pidfile_pid "$chaos_tmp/data/pgbouncer/pgbouncer.pid" pgbouncer >/dev/null || chaos_start pgbouncer
}
