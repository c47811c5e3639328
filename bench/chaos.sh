#!/usr/bin/env bash
# bench/chaos.sh SCENARIO [--out DIR]: the chaos kit's runner (issue 15).
#
# Starts its own topology (bench/chaos/lib/topology.sh: Redis or a Sentinel
# group, PostgreSQL behind PgBouncer, N postd instances behind nginx when
# N > 1; as root in network namespaces of its own, so that partitions are
# possible, else on 127.0.0.1), migrates, then from t0 runs the load
# (postd-chaos-load), the sampler and the scenario's faults on their
# schedule; after the load it heals everything, waits for the queue to
# drain, dumps the run's rows, runs the checker and the report, stops all it
# started and exits with the checker's verdict.
#
# Output (DIR, default bench/chaos-out/<scenario>-<yyyymmdd-hhmmss>):
# scenario.scn, plan.txt, t0, requests.csv, samples.csv, events.csv,
# rows.csv, check.json, check.txt, report.md, timeline.dat, timeline.png,
# load.txt (the load's summary) and logs/ (every process's log).
#
# Exit: 0 the guarantee held (checker PASS), 1 it did not (FAIL), 2 a bad
# command line or scenario, or one this machine cannot run (a partition
# without root), nothing started; 3 the run could not complete (a service
# that did not start, a tool that failed); 130/143 interrupted. Everything
# the run started is stopped and removed in every case.
#
# Environment: POSTD_BUILD_DIR (build/release; built with postd_build when
# a tool is missing, unless POSTD_SKIP_BUILD=1), POSTD_CHAOS_DRAIN_S (120:
# the bound on the drain), POSTD_CHAOS_LOOPBACK=1 (run on 127.0.0.1 even as
# root: no partitions), and deploy/lib/common.sh's (POSTD_PG_BIN, ...).
set -euo pipefail

chaos_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chaos/lib
# shellcheck source=deploy/lib/common.sh
source "$chaos_lib/../../../deploy/lib/common.sh"
# shellcheck source=bench/chaos/lib/topology.sh
source "$chaos_lib/topology.sh"
# shellcheck source=bench/chaos/lib/faults.sh
source "$chaos_lib/faults.sh"
# shellcheck source=bench/chaos/lib/observe.sh
source "$chaos_lib/observe.sh"

chaos_tools=(postd postd-chaos-plan postd-chaos-load postd-chaos-check postd-chaos-report)
chaos_netns=0
chaos_ns_prefix=postd-chaos-$$
chaos_namespaces=()
chaos_tmp=
chaos_out=
chaos_build=
chaos_phase=setup
chaos_t0=0
chaos_events=()
chaos_env=()
chaos_duration=30
chaos_rate=1000
chaos_instances=1
chaos_sentinel=0
chaos_sentinel_name=mymaster
chaos_aof=everysec
chaos_ports_used=
chaos_redis_ports=()
chaos_sentinel_ports=()
chaos_pg_port=
chaos_bouncer_port=
chaos_entry_port=
chaos_final_queue=
chaos_pids_to_end=()
chaos_exec=()

usage() {
  cat >&2 <<'EOF'
usage: bench/chaos.sh SCENARIO [--out DIR]
  SCENARIO  a scenario file (bench/scenarios/*.scn)
  --out DIR where the record, the check and the report go
            (default bench/chaos-out/<scenario>-<yyyymmdd-hhmmss>; must be empty)
EOF
  exit 2
}

# ---------------------------------------------------------------- before anything starts

chaos_build_tools() {
  local tool missing=()
  chaos_build=$(_postd_abspath "$POSTD_REPO/${POSTD_BUILD_DIR:-build/release}")
  [[ ${POSTD_BUILD_DIR:-} != /* ]] || chaos_build=$(_postd_abspath "$POSTD_BUILD_DIR")
  for tool in "${chaos_tools[@]}"; do [[ -x $chaos_build/$tool ]] || missing+=("$tool"); done
  ((${#missing[@]})) || return 0
  if [[ ${POSTD_SKIP_BUILD:-0} == 1 ]]; then
    chaos_say "missing in $chaos_build: ${missing[*]} (POSTD_SKIP_BUILD=1: not building)"
    exit 2
  fi
  chaos_say "building $chaos_build (missing: ${missing[*]})"
  postd_build "$chaos_build" Release || exit 3
  for tool in "${chaos_tools[@]}"; do
    [[ -x $chaos_build/$tool ]] || { chaos_say "$chaos_build/$tool was not built"; exit 3; }
  done
}

# The normalised plan (postd-chaos-plan) into the chaos_* settings and
# chaos_events ("T ACTION ARGS..." in time order). A bad scenario: exit 2
# with the plan's own message.
chaos_read_plan() {
  local line key value
  chaos_plan=$("$chaos_build/postd-chaos-plan" "$1") || exit 2
  while read -r key value; do
    case $key in
      duration) chaos_duration=$value ;;
      rate) chaos_rate=$value ;;
      instances) chaos_instances=$value ;;
      sentinel) [[ $value == on ]] && chaos_sentinel=1 || chaos_sentinel=0 ;;
      aof) chaos_aof=$value ;;
      env) chaos_env+=("$value") ;;
      at) chaos_events+=("$value") ;;
      '') ;;
      *) chaos_say "postd-chaos-plan printed an unknown line: $key $value"; exit 3 ;;
    esac
  done <<<"$chaos_plan"
}

# Network namespaces as root (unless POSTD_CHAOS_LOOPBACK=1) when this
# machine lets us create them (a container may not), else 127.0.0.1; a
# scenario with a partition needs them.
chaos_choose_network() {
  local line partition=0 why=''
  for line in "${chaos_events[@]}"; do [[ $line != *" partition "* ]] || partition=1; done
  if ((EUID != 0)); then
    why='that needs network namespaces and nftables, so root (run it as root, or drop the partition lines)'
  elif [[ ${POSTD_CHAOS_LOOPBACK:-0} == 1 ]]; then
    why='not with POSTD_CHAOS_LOOPBACK=1 (everything on 127.0.0.1)'
  elif ! ip netns add "$chaos_ns_prefix-probe" 2>/dev/null; then
    why='this machine does not let root create network namespaces (a container without CAP_SYS_ADMIN and CAP_NET_ADMIN?)'
  else
    ip netns del "$chaos_ns_prefix-probe"
    chaos_netns=1
    return 0
  fi
  if ((partition)); then
    chaos_say "this scenario has a partition: $why"
    exit 2
  fi
  ((EUID != 0)) || [[ ${POSTD_CHAOS_LOOPBACK:-0} == 1 ]] || chaos_say "warning: $why: running on 127.0.0.1"
}

# As root: the kit's packages (Debian), installed when one is missing.
chaos_packages() {
  ((EUID == 0)) || return 0
  # Read by postd_install_packages (dynamic scope).
  # shellcheck disable=SC2034
  local POSTD_PACKAGES=(redis-server redis-tools postgresql postgresql-client pgbouncer curl procps
    iproute2 nftables acl nginx-light gnuplot-nox util-linux)
  postd_install_packages || exit 3
}

chaos_check_commands() {
  local c missing=() need=(redis-server redis-cli psql pgbouncer curl timeout setsid awk sed
    "$POSTD_PG_BIN/initdb" "$POSTD_PG_BIN/pg_ctl")
  ((chaos_instances == 1)) || need+=(nginx)
  ((chaos_netns == 0)) || need+=(ip nft)
  ((EUID != 0)) || need+=(runuser setfacl)
  for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) || { chaos_say "missing commands: ${missing[*]}"; exit 2; }
  command -v gnuplot >/dev/null 2>&1 || chaos_say "warning: no gnuplot (Debian gnuplot-nox): no timeline.png"
}

# DIR: given (must be empty or new) or bench/chaos-out/<name>-<stamp>.
chaos_make_out() {
  local given=$1 name=$2 stamp=$3
  if [[ -n $given ]]; then
    chaos_out=$(_postd_abspath "$given")
    if [[ -d $chaos_out && -n $(ls -A "$chaos_out") ]]; then
      chaos_say "$chaos_out is not empty: give a new or empty directory"
      exit 2
    fi
  else
    chaos_out=$POSTD_REPO/bench/chaos-out/$name-$stamp
    [[ ! -e $chaos_out ]] || chaos_out+=-$$
  fi
  mkdir -p "$chaos_out/logs" || exit 2
}

chaos_random_hex() {
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex "$1"; else od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; fi
}

# ---------------------------------------------------------------- the end, whatever ends it

# Stops what the run started (the load, the sampler, the schedule and its
# pending actions, then the topology), keeps the logs, removes the rest.
# Neither a second Ctrl-C nor a closed stdout cuts it short.
# shellcheck disable=SC2317 # run by the EXIT trap
chaos_cleanup() {
  local rc=$? pid
  trap '' INT TERM PIPE
  if [[ -n $chaos_tmp ]]; then
    touch "$chaos_tmp/stopping" "$chaos_tmp/sampler-stop"
    while read -r pid; do chaos_pids_to_end+=("$pid"); done < <(cat "$chaos_tmp/jobs" 2>/dev/null)
    for pid in "${chaos_pids_to_end[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    chaos_say "stopping everything"
    chaos_topology_down
    rm -rf -- "$chaos_tmp"
  fi
  if [[ $chaos_phase != finished ]] && ((rc != 0 && rc != 2 && rc != 130 && rc != 143)); then
    chaos_say "the run did not complete (exit 3)${chaos_out:+; logs in $chaos_out/logs}"
    rc=3
  fi
  exit "$rc"
}

# ---------------------------------------------------------------- the run

# From t0: the load (in the app namespace, against nginx or the one
# instance), the sampler and the schedule. Returns when the load is done.
chaos_run_load() {
  local limit pid rc=0
  chaos_t0=$(($(chaos_now_ms) + 1000))
  printf '%s\n' "$chaos_t0" >"$chaos_out/t0"
  printf 't_ms,action,target,detail\n' >"$chaos_out/events.csv"
  chaos_exec_in app
  "${chaos_exec[@]}" "$chaos_build/postd-chaos-load" --port "$chaos_entry_port" --host 127.0.0.1 \
    --secret "$chaos_jwt_secret" --rate "$chaos_rate" --duration "$chaos_duration" \
    --prefix "$chaos_prefix" --t0 "$chaos_t0" --out "$chaos_out/requests.csv" \
    >"$chaos_out/load.txt" 2>"$chaos_out/logs/load.log" &
  pid=$!
  chaos_pids_to_end+=("$pid")
  chaos_sampler &
  chaos_pids_to_end+=("$!")
  chaos_schedule &
  chaos_sched_pid=$!
  chaos_pids_to_end+=("$chaos_sched_pid")
  chaos_say "load: $chaos_rate posts/s for ${chaos_duration} s from t0 ($chaos_t0), ${#chaos_events[@]} fault(s) scheduled"
  # The load's own bound (duration + its 60 s settle) with a margin.
  limit=$(awk -v d="$chaos_duration" 'BEGIN { printf "%d", d + 100 }')
  while _postd_alive "$pid" && ((($(chaos_now_ms) - chaos_t0) / 1000 < limit)); do sleep 0.5; done
  if _postd_alive "$pid"; then
    chaos_say "the load still runs ${limit} s after t0: stopping it"
    kill -TERM "$pid" 2>/dev/null || true
  fi
  wait "$pid" || rc=$?
  ((rc == 0)) || { chaos_say "postd-chaos-load failed (exit $rc):"; _postd_tail_log "$chaos_out/logs/load.log"; exit 3; }
  sed 's/^/chaos: load: /' "$chaos_out/load.txt" >&2
}

# After the load: pending actions end (a restart 3 s after a late kill),
# everything is healed, the queue drains, the sampler stops.
chaos_settle() {
  local i=0
  while _postd_alive "$chaos_sched_pid" && ((i++ < 240)); do sleep 0.5; done
  _postd_alive "$chaos_sched_pid" && chaos_say "warning: fault actions still running 120 s after the load"
  chaos_heal_all
  chaos_drain || true
  touch "$chaos_tmp/sampler-stop"
}

# rows.csv, the checker (its lines printed; its exit status returned) and
# the report.
chaos_check_and_report() {
  local rc=0
  [[ -n $chaos_final_queue ]] || { chaos_say "Redis never answered after the load: cannot check"; exit 3; }
  chaos_dump_rows || { chaos_say "could not read the rows from PostgreSQL"; exit 3; }
  "$chaos_build/postd-chaos-check" --requests "$chaos_out/requests.csv" --rows "$chaos_out/rows.csv" \
    --queue "$chaos_final_queue" --json "$chaos_out/check.json" --text "$chaos_out/check.txt" || rc=$?
  ((rc <= 1)) || { chaos_say "postd-chaos-check could not check (exit $rc)"; exit 3; }
  if ! "$chaos_build/postd-chaos-report" --scenario "$chaos_out/plan.txt" --requests "$chaos_out/requests.csv" \
    --samples "$chaos_out/samples.csv" --events "$chaos_out/events.csv" --check "$chaos_out/check.json" \
    --out "$chaos_out" 2>"$chaos_out/logs/report.log"; then
    chaos_say "warning: postd-chaos-report failed:"
    _postd_tail_log "$chaos_out/logs/report.log"
  elif ! command -v gnuplot >/dev/null 2>&1; then
    chaos_say "warning: no gnuplot (Debian gnuplot-nox): no timeline.png"
  elif ! gnuplot -e "dir='$chaos_out'" "$POSTD_REPO/bench/chaos/timeline.gp" >"$chaos_out/logs/gnuplot.log" 2>&1; then
    chaos_say "warning: gnuplot failed (logs/gnuplot.log)"
  fi
  chaos_say "report: $chaos_out/report.md$([[ -f $chaos_out/timeline.png ]] && echo ", $chaos_out/timeline.png")"
  return "$rc"
}

main() {
  local scenario='' out='' name stamp rc=0
  while (($#)); do
    case $1 in
      --out) (($# >= 2)) || usage; out=$2; shift 2 ;;
      -h | --help) usage ;;
      -*) chaos_say "unknown option $1"; usage ;;
      *) [[ -z $scenario ]] || usage; scenario=$1; shift ;;
    esac
  done
  [[ -n $scenario ]] || usage
  [[ -r $scenario && -f $scenario ]] || { chaos_say "cannot read scenario $scenario"; exit 2; }
  chaos_build_tools
  chaos_read_plan "$scenario"
  chaos_packages
  chaos_choose_network
  chaos_check_commands

  name=$(basename "$scenario" .scn)
  stamp=$(date +%Y%m%d-%H%M%S)
  chaos_make_out "$out" "$name" "$stamp"
  cp -- "$scenario" "$chaos_out/scenario.scn"
  printf '%s\n' "$chaos_plan" >"$chaos_out/plan.txt"
  chaos_prefix=chaos-$stamp-$$
  chaos_key=$(chaos_queue_key)
  chaos_jwt_secret=$(chaos_random_hex 32)
  chaos_admin_token=$(chaos_random_hex 16)
  chaos_say "scenario $scenario, output in $chaos_out$( ((chaos_netns)) && echo ", namespaces $chaos_ns_prefix-{app,redis,pg}")"

  trap chaos_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  chaos_remove_stale_runs
  chaos_tmp=$(mktemp -d "/tmp/postd-chaos-$$.XXXXXX")
  postd_service_user
  chaos_topology_up || exit 3
  chaos_run_load
  chaos_settle
  chaos_check_and_report || rc=$?
  chaos_phase=finished
  exit "$rc"
}

main "$@"
