#!/usr/bin/env bash
# bench/cluster.sh: what a cluster does on this machine (issue 15). For 1, 2
# and 3 nodes (deploy/cluster/node*.yaml on 127.0.0.2-4, one Redis, Kamailio's
# deploy/cluster/kamailio.cfg in front), SIPp calls conferences through
# Kamailio: every call a new conference (conf-<n>, so every call claims a
# name in the registry and gives it up), held 1 ms, in 3 s steps of a rate
# ladder; a step passes when SIPp counts no failed call within the paced time
# (+10% +0.5 s). Beside it, one gateway standalone with SIPp straight at it,
# and the same behind Kamailio: what one node does without the front door and
# without the registry.
#
# The gateways share core 1 (taskset), Kamailio, SIPp and Redis core 0, so
# N nodes split one core: the figure that matters is per-node efficiency
# (calls/s of N nodes over N x 1 node's, <= 1/N here) and the registry's cost,
# Redis round trips per call (the nodes' mediagw_cluster_redis_round_trips_total
# over the calls) and Redis commands per call (its INFO commandstats).
#
# Every gateway runs with state.store none (what is measured is the cluster).
# Knobs: RATES="200 400 ...", NODES="1 2 3", SECS=3, CONF=0 (no conference
# legs), CONF_STEPS (total legs per step, split over the nodes).
# Output: bench/out/cluster-<stamp>/; name=value lines at the end:
#   cluster_sip_cps_standalone(_kamailio), cluster_sip_cps_<n>nodes, cluster_efficiency_<n>nodes,
#   cluster_redis_round_trips_per_call_<n>nodes, cluster_redis_commands_per_call_<n>nodes,
#   cluster_conference_legs_<n>nodes
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/out/cluster-$STAMP
mkdir -p "$OUT"
RATES=${RATES:-"200 400 600 800 1000 1200 1400 1600 1800 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000"}
NODES=${NODES:-"1 2 3"}
SECS=${SECS:-3}
log() { echo "cluster: $*" >&2; }
for tool in sipp kamailio redis-server redis-cli; do
  command -v $tool >/dev/null || { log "$tool is not installed (test/tools.sh installs it)"; exit 1; }
done
go build -o "$OUT/gateway" ./cmd/gateway || exit 1

REDIS_PORT=59380 KAM_PORT=59060 UAC_PORT=59061
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  PIDS=()
}
trap stop_all EXIT INT TERM

scenario() { # the conference member of test/e2e, held 1 ms
  sed 's/@HOLD_MS@/1/' test/e2e/testdata/cluster/uac_conf.xml >"$OUT/uac.xml"
}
users() { # n from: conf-<from>..conf-<from+n-1>, one per call
  { echo SEQUENTIAL; seq "$2" $(($2 + $1 - 1)) | sed 's/^/conf-/; s/$/;/'; } >"$OUT/users.csv"
}

start_nodes() { # n [standalone]
  local n=$1 i ip
  : >"$OUT/dispatcher.list"
  for i in $(seq "$n"); do
    ip=127.0.0.$((i + 1))
    if [[ ${2:-} == standalone ]]; then
      sed -e '/^cluster:/,$d' deploy/cluster/node$i.yaml
    else
      sed -e "s/127.0.0.1:6379/127.0.0.1:$REDIS_PORT/" deploy/cluster/node$i.yaml
    fi | sed -e 's/level: info/level: warn/' -e 's/^  store: file/  store: none/' -e 's/port_max: 30999/port_max: 39999/' -e "s#mediagw-node$i.state#$OUT/node$i.state#" >"$OUT/node$i.yaml"
    taskset -c 1 "$OUT/gateway" -config "$OUT/node$i.yaml" >>"$OUT/node$i.log" 2>&1 &
    PIDS+=($!)
    echo "1 sip:$ip:5060" >>"$OUT/dispatcher.list"
  done
  for i in $(seq "$n"); do
    for _ in $(seq 100); do curl -fs "http://127.0.0.$((i + 1)):8080/healthz" >/dev/null && break; sleep 0.1; done
  done
}

round_trips() { # n: the nodes' registry round trips so far
  local sum=0 i v
  for i in $(seq "$1"); do
    v=$(curl -fs "http://127.0.0.$((i + 1)):8080/metrics" | sed -n 's/^mediagw_cluster_redis_round_trips_total //p')
    sum=$(awk -v a="$sum" -v b="${v:-0}" 'BEGIN{printf "%.0f", a+b}')
  done
  echo "$sum"
}
redis_cmds() { redis-cli -p $REDIS_PORT info commandstats | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s+0}'; }

ladder() { # name target: the best passing rate; also sets CALLS_DONE
  local name=$1 target=$2 best=0 r m t0 t1 rc inTime from=1
  CALLS_DONE=0
  for r in $RATES; do
    m=$((r * SECS))
    users "$m" "$from"
    from=$((from + m))
    t0=$(date +%s.%N)
    taskset -c 0 sipp -sf "$OUT/uac.xml" -inf "$OUT/users.csv" "$target" -i 127.0.0.1 -p $UAC_PORT \
      -m "$m" -r "$r" -l $((r * 2)) -buff_size 4194304 -nostdin -timeout 60s -timeout_error -recv_timeout 5000 \
      >"$OUT/$name-sipp-$r.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    CALLS_DONE=$((CALLS_DONE + m))
    echo "$CALLS_DONE" >"$OUT/$name.calls"
    inTime=$(awk -v a="$t0" -v b="$t1" -v s="$SECS" 'BEGIN{print (b-a <= s*1.1+0.5) ? 1 : 0}')
    echo "rate=$r calls=$m exit=$rc elapsed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')" >>"$OUT/$name.txt"
    [[ $rc == 0 && $inTime == 1 ]] || break
    best=$r
  done
  echo "$best"
}

scenario
declare -A CPS RT CMD
log "standalone: one gateway, SIPp straight at it"
start_nodes 1 standalone
CPS[standalone]=$(ladder standalone 127.0.0.2:5060)
stop_all
log "standalone behind Kamailio: one gateway, no cluster"
start_kamailio() {
  taskset -c 0 kamailio -m 512 -M 16 -f "$ROOT/deploy/cluster/kamailio.cfg" -DD -E -A "LISTEN=udp:127.0.0.1:$KAM_PORT" \
    -A "DS_LIST=\"$OUT/dispatcher.list\"" -A DS_PING=1 >"$OUT/kamailio-$1.log" 2>&1 &
  PIDS+=($!)
  sleep 2
}
start_nodes 1 standalone
start_kamailio standalone
CPS[kamailio]=$(ladder kamailio 127.0.0.1:$KAM_PORT)
stop_all

taskset -c 0 redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
for n in $NODES; do
  log "$n node(s) behind Kamailio"
  redis-cli -p $REDIS_PORT flushall >/dev/null
  start_nodes "$n"
  start_kamailio "$n"
  rt0=$(round_trips "$n") c0=$(redis_cmds)
  CPS[$n]=$(ladder "nodes$n" 127.0.0.1:$KAM_PORT)
  CALLS_DONE=$(cat "$OUT/nodes$n.calls")
  rt1=$(round_trips "$n") c1=$(redis_cmds)
  RT[$n]=$(awk -v a="$rt0" -v b="$rt1" -v c="$CALLS_DONE" 'BEGIN{printf "%.2f", (b-a)/c}')
  CMD[$n]=$(awk -v a="$c0" -v b="$c1" -v c="$CALLS_DONE" 'BEGIN{printf "%.2f", (b-a)/c}')
  stop_all
done
# Conference legs (CONF=0 skips): N nodes, one conference load program
# (bench/conference) per node driving that node's HTTP API, all on core 0,
# each given 1/N of every step's legs; the figure is the legs of the last
# step every node passed at once (late ticks and loss under 0.1%, every
# listener hearing every talker). Conferences stay on their node: no cascade.
declare -A LEGS
if [[ ${CONF:-1} == 1 ]]; then
  go build -o "$OUT/confload" ./bench/conference || exit 1
  CONF_STEPS=${CONF_STEPS:-"600 1200 1800 2400 3000 3600 4200 4800"}
  for n in $NODES; do
    log "conference legs, $n node(s)"
    redis-cli -p $REDIS_PORT flushall >/dev/null
    start_nodes "$n"
    steps=$(for s in $CONF_STEPS; do echo $((s / n / 10 * 10)); done | paste -sd, -)
    cpids=()
    for i in $(seq "$n"); do
      GOMAXPROCS=1 taskset -c 0 "$OUT/confload" -http "127.0.0.$((i + 1)):8080" -gw-pid "${PIDS[$((i - 1))]}" \
        -port $((50000 + i * 100)) -big 0 -steps "$steps" >"$OUT/conf-$n-node$i.txt" 2>&1 &
      cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p"; done
    min=
    for i in $(seq "$n"); do
      b=$(sed -n 's/^conference_legs_per_core=//p' "$OUT/conf-$n-node$i.txt")
      [[ -z $min || ${b:-0} -lt $min ]] && min=${b:-0}
    done
    LEGS[$n]=$((min * n))
    stop_all
  done
fi
kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a+0>0 && b+0>0) printf "%.2f", a/b; else print "n/a"}'; }
{
  echo "| setup | SIP calls/s (0 failures) | per-node efficiency | Redis round trips / call | Redis commands / call |"
  echo "|---|---|---|---|---|"
  echo "| 1 gateway, no Kamailio, no cluster | ${CPS[standalone]} | | | |"
  echo "| 1 gateway behind Kamailio, no cluster | ${CPS[kamailio]} | | | |"
  for n in $NODES; do
    echo "| $n node(s) behind Kamailio | ${CPS[$n]} | $(ratio "${CPS[$n]}" $((${CPS[1]:-0} * n))) | ${RT[$n]} | ${CMD[$n]} |"
  done
  if [[ ${CONF:-1} == 1 ]]; then
    echo
    echo "| nodes | conference legs, every node passing | per-node efficiency |"
    echo "|---|---|---|"
    for n in $NODES; do
      echo "| $n | ${LEGS[$n]} | $(ratio "${LEGS[$n]}" $((${LEGS[1]:-0} * n))) |"
    done
  fi
  echo
  echo "cluster_sip_cps_standalone=${CPS[standalone]}"
  echo "cluster_sip_cps_standalone_kamailio=${CPS[kamailio]}"
  for n in $NODES; do
    echo "cluster_sip_cps_${n}nodes=${CPS[$n]}"
    echo "cluster_efficiency_${n}nodes=$(ratio "${CPS[$n]}" $((${CPS[1]:-0} * n)))"
    echo "cluster_redis_round_trips_per_call_${n}nodes=${RT[$n]}"
    echo "cluster_redis_commands_per_call_${n}nodes=${CMD[$n]}"
    [[ ${CONF:-1} == 1 ]] && echo "cluster_conference_legs_${n}nodes=${LEGS[$n]}"
  done
} | tee "$OUT/summary.txt"
