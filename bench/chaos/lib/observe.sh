# shellcheck shell=bash
# What the chaos kit measures besides the load's record (sourced by
# bench/chaos.sh after topology.sh): the queue and the run's rows, sampled
# every 500 ms into samples.csv, the drain after the load, and the rows
# dumped for the checker. Every probe goes to the services' own loopback in
# their namespace, so a partition or a stopped PgBouncer does not blind it;
# each has a short timeout, so a stopped Redis or PostgreSQL leaves empty
# fields instead of stalling the sampler.

# The Bull key prefix of the queue postd uses (its settings, or an `env`
# directive's).
chaos_queue_key() {
  local prefix=bull name=post-creation kv
  for kv in "${chaos_env[@]}"; do
    case $kv in
      QUEUE_PREFIX=*) prefix=${kv#*=} ;;
      QUEUE_NAME=*) name=${kv#*=} ;;
    esac
  done
  printf '%s:%s\n' "$prefix" "$name"
}

# "WAIT ACTIVE DELAYED FAILED": the queue's sizes on the master now.
chaos_queue_counts() {
  local i k out v=()
  i=$(chaos_redis_master) || return 1
  k=$chaos_key
  out=$(printf 'LLEN %s:wait\nLLEN %s:active\nZCARD %s:delayed\nZCARD %s:failed\n' "$k" "$k" "$k" "$k" |
    chaos_in redis timeout 0.9 redis-cli -h 127.0.0.1 -p "${chaos_redis_ports[i]}" 2>/dev/null) || return 1
  mapfile -t v <<<"$out"
  [[ ${#v[@]} -eq 4 && ${v[0]}${v[1]}${v[2]}${v[3]} =~ ^[0-9]+$ ]] || return 1
  printf '%s %s %s %s\n' "${v[@]}"
}

# The run's rows in "Post" now.
chaos_rows_count() {
  chaos_in pg timeout 0.9 env PGCONNECT_TIMEOUT=1 psql -X -q -w -h 127.0.0.1 -p "$chaos_pg_port" -U postgres \
    -d postd -tAc "SELECT count(*) FROM \"Post\" WHERE content LIKE '$chaos_prefix-%'" 2>/dev/null
}

# Runs in the background from t0 until $chaos_tmp/sampler-stop exists: a
# line `t_ms,wait,active,delayed,failed,rows` every 500 ms (a slot missed
# while a probe waited is skipped, never made up).
chaos_sampler() {
  local now counts rows next=$chaos_t0
  set +e
  printf 't_ms,wait,active,delayed,failed,rows\n' >"$chaos_out/samples.csv"
  while [[ ! -e $chaos_tmp/sampler-stop ]] && ! chaos_stopping; do
    now=$(chaos_now_ms)
    ((now >= next)) || { sleep "$(chaos_secs $((next - now)))"; now=$(chaos_now_ms); }
    # Both probes at once: a stopped service costs one timeout, not two.
    chaos_rows_count >"$chaos_tmp/sample-rows" 2>/dev/null &
    counts=$(chaos_queue_counts) || counts='   '
    if wait "$!"; then rows=$(<"$chaos_tmp/sample-rows"); else rows=''; fi
    now=$(chaos_now_ms) # when the probes answered (each takes some 20-50 ms)
    printf '%s,%s,%s\n' "$((now - chaos_t0))" "${counts// /,}" "$rows" >>"$chaos_out/samples.csv"
    next=$((chaos_t0 + ((now - chaos_t0) / 500 + 1) * 500))
  done
}

# Wait until wait + active + delayed is 0 in two probes 500 ms apart, for
# at most POSTD_CHAOS_DRAIN_S (120) seconds. Sets chaos_final_queue to
# `wait=W,active=A,delayed=D` (the last counts seen); fails on the bound.
chaos_drain() {
  local limit=${POSTD_CHAOS_DRAIN_S:-120} start=$SECONDS zeros=0 said=$SECONDS w a d f
  chaos_final_queue=''
  while :; do
    if read -r w a d f < <(chaos_queue_counts); then
      chaos_final_queue="wait=$w,active=$a,delayed=$d"
      if ((w + a + d == 0)); then
        ((++zeros < 2)) || { chaos_say "queue drained in $((SECONDS - start)) s (failed $f)"; return 0; }
      else
        zeros=0
      fi
    fi
    if ((SECONDS - start >= limit)); then
      chaos_say "the queue did not drain within ${limit} s (${chaos_final_queue:-Redis did not answer}; POSTD_CHAOS_DRAIN_S sets the bound)"
      return 1
    fi
    if ((SECONDS - said >= 10)); then
      chaos_say "draining: ${chaos_final_queue:-Redis does not answer} after $((SECONDS - start)) s"
      said=$SECONDS
    fi
    sleep 0.5
  done
}

# rows.csv: every row of the run's posts, as the checker reads them.
chaos_dump_rows() {
  chaos_in pg env PGCONNECT_TIMEOUT=5 psql -X -q -w -h 127.0.0.1 -p "$chaos_pg_port" -U postgres -d postd \
    -c "\\copy (SELECT content, \"jobId\", id FROM \"Post\" WHERE content LIKE '$chaos_prefix-%') TO STDOUT WITH CSV" \
    >"$chaos_out/rows.csv"
}
