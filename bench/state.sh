#!/usr/bin/env bash
# bench/state.sh: what keeping the state costs (issue 13). Runs bench/peers.sh's
# MGCP (CRCX+DLCX pairs/s) and SIP (calls/s with 0 failures) parts against
# mediagw with state.store none, file and redis, one after the other in one
# invocation on this machine (ROUNDS times, interleaved), and prints each
# figure and its ratio to none. Redis is a Debian redis-server started here on
# a loopback port, without persistence (what the gateway pays is the round
# trip and the pipeline, not Redis's own disk).
#
# Knobs: ROUNDS=1, STORES="none file redis", SIP_RATES (500-call steps around 10,000),
# plus peers.sh's (STEP...).
# Output: bench/out/state-<stamp>/; name=value lines at the end:
#   state_mgcp_pairs_per_s_<store>, state_sip_cps_<store>, state_*_ratio_<store>_vs_none
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=bench/out/state-$STAMP
mkdir -p "$OUT"
ROUNDS=${ROUNDS:-1}
# A finer SIP ladder than peers.sh's: around this machine's capacity its
# 2,000-call steps turn a 3% difference into 25% (500-call steps from 7,000 to 12,000).
export SIP_RATES=${SIP_RATES:-"2000 4000 6000 7000 7500 8000 8500 9000 9500 10000 10500 11000 11500 12000 13000 14000 16000 18000 20000 24000 28000 32000"}
STORES=${STORES:-"none file redis"}
log() { echo "state: $*" >&2; }

REDIS_PID=
cleanup() { [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null; }
trap cleanup EXIT INT TERM
if [[ $STORES == *redis* ]]; then
  command -v redis-server >/dev/null || { log "redis-server is not installed (test/tools.sh installs it)"; exit 1; }
  REDIS_PORT=59379
  redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
fi

declare -A MGCP SIP
for round in $(seq "$ROUNDS"); do
  for st in $STORES; do
    log "round $round: state.store $st"
    f=$OUT/$st-$round.txt
    PARTS="mgcp sip" SYSTEMS=mediagw SIP_PEER=0 RECORD=0 STATE=$st STATE_REDIS=127.0.0.1:${REDIS_PORT:-6379} \
      bench/peers.sh >"$f" 2>"$OUT/$st-$round.log"
    MGCP[$st]="${MGCP[$st]:-} $(sed -n 's/^mgcp_pairs_per_s_mediagw=//p' "$f" | tail -1)"
    SIP[$st]="${SIP[$st]:-} $(sed -n 's/^sip_cps_mediagw=//p' "$f" | tail -1)"
  done
done

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | awk '{a[NR]=$1} END{if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a+0>0 && b+0>0) printf "%.2f", a/b; else print "n/a"}'; }
{
  echo "| state.store | MGCP CRCX+DLCX pairs/s | vs none | SIP calls/s, 0 failures | vs none |"
  echo "|---|---|---|---|---|"
  base_m=$(echo "${MGCP[none]:-}" | median) base_s=$(echo "${SIP[none]:-}" | median)
  for st in $STORES; do
    m=$(echo "${MGCP[$st]}" | median) s=$(echo "${SIP[$st]}" | median)
    echo "| $st | $m | $(ratio "$m" "$base_m") | $s | $(ratio "$s" "$base_s") |"
  done
  echo
  echo "rounds=$ROUNDS"
  for st in $STORES; do
    m=$(echo "${MGCP[$st]}" | median) s=$(echo "${SIP[$st]}" | median)
    echo "state_mgcp_pairs_per_s_$st=$m"
    echo "state_sip_cps_$st=$s"
    [[ $st == none ]] && continue
    echo "state_mgcp_ratio_${st}_vs_none=$(ratio "$m" "$base_m")"
    echo "state_sip_ratio_${st}_vs_none=$(ratio "$s" "$base_s")"
  done
} | tee "$OUT/summary.txt"
