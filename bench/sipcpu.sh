#!/usr/bin/env bash
# bench/sipcpu.sh: CPU per SIP call, the measure of SIP cost that does not
# depend on finding a capacity on a noisy machine. Each system answers
# `sipp -sn uac -s echo` at one fixed rate below every system's capacity;
# the system's own CPU time (utime+stime from /proc) over the run, divided by
# the calls that completed, is its cost per call. Systems, in rounds
# interleaved so that the machine's drift hits them alike:
#   sipp-uas   `sipp -sn uas` (C++, 180 + 200 to INVITE, 200 to BYE)
#   sipgo-uas  bench/cmd/sipgouas: sipgo's own minimal UAS, no media (the floor
#              our SIP stack sets)
#   mediagw    the gateway on bench/conf/gateway.yaml (ports, SDP, table)
# The system runs pinned to core 1, SIPp to core 0, as in bench/peers.sh, on
# the same ports (run one or the other).
# Knobs: RATE=3000 SECS=6 ROUNDS=3 SYSTEMS="sipp-uas sipgo-uas mediagw" NICE=-20
set -uo pipefail

NICE=${NICE:--20}
if [[ $(id -u) != 0 ]]; then NICE=0; fi
RATE=${RATE:-3000} SECS=${SECS:-6} ROUNDS=${ROUNDS:-3}
SYSTEMS=${SYSTEMS:-"sipp-uas sipgo-uas mediagw"}
GW_SIP=59104 GW_MGCP=59103 GW_HTTP=59105 GW_NG=59106 SIPP_UAS=59110 SIPP_UAC=59111 SIPGO_UAS=59112
SUT_CORE=1 GEN_CORE=0

cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-bench/out/sipcpu-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
go build -o "$OUT/gateway" ./cmd/gateway && go build -o "$OUT/sipgouas" ./bench/cmd/sipgouas || exit 1
sed -e "s/@SIP_PORT@/$GW_SIP/" -e "s/@MGCP_PORT@/$GW_MGCP/" -e "s/@HTTP_PORT@/$GW_HTTP/" -e "s/@NG_PORT@/$GW_NG/" \
    -e "s/@RTP_MIN@/48000/" -e "s/@RTP_MAX@/57999/" bench/conf/gateway.yaml >"$OUT/gateway.yaml"

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks

one() { # system round
  local s=$1 port pid c0 c1 rc ok
  case $s in
    sipp-uas) port=$SIPP_UAS
      nice -n "$NICE" taskset -c $SUT_CORE sipp -sn uas -i 127.0.0.1 -p $port -buff_size 4194304 -nostdin >"$OUT/$s.log" 2>&1 & ;;
    sipgo-uas) port=$SIPGO_UAS
      nice -n "$NICE" taskset -c $SUT_CORE "$OUT/sipgouas" -listen 127.0.0.1:$port >"$OUT/$s.log" 2>&1 & ;;
    mediagw) port=$GW_SIP
      nice -n "$NICE" taskset -c $SUT_CORE "$OUT/gateway" -config "$OUT/gateway.yaml" >"$OUT/$s.log" 2>&1 & ;;
    *) echo "unknown system $s" >&2; return 1 ;;
  esac
  pid=$!
  for _ in $(seq 50); do ss -Hlun "sport = :$port" | grep -q . && break; sleep 0.1; done
  c0=$(cpu $pid)
  nice -n "$NICE" taskset -c $GEN_CORE sipp -sn uac 127.0.0.1:$port -s echo -i 127.0.0.1 -p $SIPP_UAC \
    -r "$RATE" -m $((RATE * SECS)) -l $((RATE * 2)) -buff_size 4194304 -nostdin -timeout 60s \
    -recv_timeout 5000 >"$OUT/$s-uac-$2.log" 2>&1
  rc=$?
  sleep 0.5 # the last BYEs' answers
  c1=$(cpu $pid)
  kill "$pid"; wait "$pid" 2>/dev/null
  ok=$(sed -n 's/^ *Successful call *| *[0-9]* *| *\([0-9]*\).*/\1/p' "$OUT/$s-uac-$2.log" | tail -1)
  echo "system=$s round=$2 rate=$RATE calls_ok=${ok:-0} sipp_exit=$rc cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN{print (b-a)/100}')" \
    "us_per_call=$(awk -v a="$c0" -v b="$c1" -v n="${ok:-0}" 'BEGIN{if (n>0) printf "%.1f", (b-a)*10000/n; else print "n/a"}')"
}

for r in $(seq "$ROUNDS"); do
  for s in $SYSTEMS; do one "$s" "$r"; done
done | tee "$OUT/results.txt"
# medians per system, and the ratios to sipp uas
median() { sed -n "s/^system=$1 .*us_per_call=\([0-9.]*\)$/\1/p" "$OUT/results.txt" | sort -n |
  awk '{a[NR]=$1} END {if (NR) printf "%.1f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(median sipp-uas)
for s in $SYSTEMS; do
  m=$(median "$s")
  echo "median_us_per_call_${s//-/_}=${m:-n/a}"
  [[ $s != sipp-uas && -n $m && -n $base ]] && echo "us_per_call_ratio_${s//-/_}_vs_sipp_uas=$(awk -v a="$m" -v b="$base" 'BEGIN{printf "%.2f", a/b}')"
done | tee -a "$OUT/results.txt"
