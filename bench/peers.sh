#!/usr/bin/env bash
# bench/peers.sh: measure mediagw against the tools operators use today, side by
# side in one run on this machine (issue 6):
#   RTP relay:  mediagw (MGCP rtpbridge/$) vs rtpengine 10.5 userspace (ng) vs
#               osmo-mgw 1.10 (MGCP rtpbridge/*), driven by bench/cmd/rtpload
#   MGCP:       CRCX+DLCX pairs/s, mediagw vs osmo-mgw, same driver, idle and
#               loaded (500 relayed calls = 1,000 connections carrying 50k pps)
#   SIP:        calls/s with 0 failures, SIPp uac against mediagw vs `sipp -sn uas`,
#               and vs the floor sipgo sets (bench/cmd/sipgouas: sipgo's own UAS, no media)
#   ng:         offer+answer+delete cycles/s with 1,000 calls loaded, mediagw's
#               ng front vs rtpengine, same driver (rtpload ngtps)
# The system under test (SUT) runs pinned to core 1, the load generator to core 0.
# Prints a markdown table and name=value lines ending with the ratios;
# writes everything to bench/out/peers-<stamp>/ and (RECORD=1, default) adds the
# run to the "Peers" section of bench/RESULTS.md.
#
# Knobs (environment): CALLS=1000 STEP=6s DRAIN=1s RAMP_START=10000
# RAMP_FACTOR=1.15 RAMP_MAX=500000 SYSTEMS="rtpengine osmo-mgw mediagw"
# SIP_RATES="..." QUICK=1 (short smoke run) RECORD=0 NICE=-20
# PPROF=1 (the gateway writes a CPU profile per instance to the output folder)
# SIP_PEER=0 (skip the sipp uas series); SIP_FLOOR=0 (skip the sipgo uas series);
# SIP_OVERLOAD=0 (skip the 1.5x step);
# OVERLOAD_DELAY=0 (sip.overload.delay off), OVERLOAD_QUEUE=0s (sip.overload.queue_delay off);
# both for mediagw without load shedding
# MGCP_LOADED=0 (skip the loaded MGCP series); LOAD_CALLS=500 LOAD_PPS=50000
# PARTS="relay mgcp sip ng" (a subset measures only those parts; RECORD defaults
# to 0 then, since a partial run is no comparison of record).
# STATE=file|redis (mediagw keeps its state there, as issue 13 measures; default
# none; redis needs a redis-server on STATE_REDIS, default 127.0.0.1:6379; each
# instance starts on an empty state). bench/state.sh runs the three side by side.
set -uo pipefail
set -f # no globbing: endpoint names hold "*"

NICE=${NICE:--20}
if [[ $(id -u) != 0 ]]; then NICE=0; fi
# Other work on this shared machine competes for both cores: the SUT and the
# generator run at a raised priority (the same for every system under test).
# With autogroup scheduling nice only ranks processes within one session, so
# the run gets a session of its own and that session's group gets the nice.
if [[ $NICE != 0 && -w /proc/self/autogroup && -z ${PEERS_SESSION:-} ]]; then
  PEERS_SESSION=1 exec setsid --wait "$(readlink -f "$0")" "$@"
fi
if [[ $NICE != 0 && -w /proc/self/autogroup ]]; then echo "$NICE" >/proc/self/autogroup 2>/dev/null || true; fi

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/bench/out/peers-$STAMP}
mkdir -p "$OUT"

CALLS=${CALLS:-1000}
STEP=${STEP:-6s}
DRAIN=${DRAIN:-1s}
RAMP_START=${RAMP_START:-10000}
RAMP_FACTOR=${RAMP_FACTOR:-1.15}
RAMP_MAX=${RAMP_MAX:-500000}
SYSTEMS=${SYSTEMS:-"rtpengine osmo-mgw mediagw"}
SIP_RATES=${SIP_RATES:-"500 1000 2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 22000 24000 26000 28000 30000 32000 36000 40000"}
SIP_SECS=${SIP_SECS:-3}
TPS_DUR=${TPS_DUR:-4s}
TPS_CONC=${TPS_CONC:-4,16,64}
PARTS=${PARTS:-relay mgcp sip ng}
NG_LOAD=${NG_LOAD:-1000}
if [[ $PARTS == "relay mgcp sip ng" ]]; then RECORD=${RECORD:-1}; else RECORD=${RECORD:-0}; fi
part() { [[ " $PARTS " == *" $1 "* ]]; }
if [[ ${QUICK:-0} == 1 ]]; then
  CALLS=200 STEP=2s RAMP_FACTOR=1.6 TPS_DUR=1s TPS_CONC=16 SIP_RATES="500 2000 8000" SIP_SECS=2 RECORD=0
fi

# Ports: SUT RTP in 48000-57999, 10,000 ports as in mediagw's default range
# (rtp.port_min/port_max; half its pairs bound the INVITEs awaiting their ACK,
# sip.unconfirmed.total); generator and signalling at 59001-59199.
# bench/conference runs alone and uses 10000-49999 and 59060/59080/59427.
RTP_MIN=48000 RTP_MAX=57999
GEN_A=127.0.0.1:59001 GEN_B=127.0.0.1:59002 CTL_LOCAL=127.0.0.1:59003
LOAD_A=127.0.0.1:59004 LOAD_B=127.0.0.1:59005 LOAD_CTL=127.0.0.1:59006
LOAD_CALLS=${LOAD_CALLS:-500} LOAD_PPS=${LOAD_PPS:-50000}
OSMO_MGCP=59101 RTPE_NG=59102 GW_MGCP=59103 GW_SIP=59104 GW_HTTP=59105 GW_NG=59106
SIPP_UAS=59110 SIPP_UAC=59111 SIPGO_UAS=59112

SUT_CORE=1 GEN_CORE=0
load() { nice -n "$NICE" taskset -c $GEN_CORE "$@"; }

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# --- install and build -------------------------------------------------------
missing=()
command -v osmo-mgw >/dev/null || missing+=(osmo-mgw)
command -v rtpengine >/dev/null || missing+=(rtpengine-daemon)
command -v sipp >/dev/null || missing+=(sip-tester)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$OUT/apt.log" 2>&1 \
    || { log "apt-get install failed, see $OUT/apt.log"; exit 1; }
fi

log "building rtpload and the gateway into $OUT"
go build -o "$OUT/rtpload" ./bench/cmd/rtpload || exit 1
HAVE_GW=0
if go build -o "$OUT/gateway" ./cmd/gateway 2>"$OUT/gateway-build.log"; then HAVE_GW=1; else
  log "cmd/gateway does not build (see $OUT/gateway-build.log): mediagw rows are skipped"; fi
RTPLOAD=$OUT/rtpload
if part sip && [[ ${SIP_FLOOR:-1} == 1 ]]; then go build -o "$OUT/sipgouas" ./bench/cmd/sipgouas || exit 1; fi

sed -e "s/@SIP_PORT@/$GW_SIP/" -e "s/@MGCP_PORT@/$GW_MGCP/" -e "s/@HTTP_PORT@/$GW_HTTP/" -e "s/@NG_PORT@/$GW_NG/" \
    -e "s/@RTP_MIN@/$RTP_MIN/" -e "s/@RTP_MAX@/$RTP_MAX/" bench/conf/gateway.yaml >"$OUT/gateway.yaml"
# OVERLOAD_DELAY sets sip.overload.delay, OVERLOAD_QUEUE sip.overload.queue_delay (0 turns
# either off; both 0: never shed, the gateway as it was before issue 17).
if [[ -n ${OVERLOAD_DELAY:-}${OVERLOAD_QUEUE:-} ]]; then
  sed -i "s/^  external_host: \"127.0.0.1\"/&\n  overload: {delay: ${OVERLOAD_DELAY:-20ms}, queue_delay: ${OVERLOAD_QUEUE:-100ms}}/" "$OUT/gateway.yaml"
fi
STATE_SEQ=0
fresh_state() { # every mediagw instance starts on an empty state: its own file, its own Redis prefix
  [[ ${STATE:-none} == none ]] && return
  rm -f "$OUT/gateway.state"
  STATE_SEQ=$((STATE_SEQ + 1))
  sed -i -e "s#^state: .*#state: {store: $STATE, path: \"$OUT/gateway.state\", redis: {addr: \"${STATE_REDIS:-127.0.0.1:6379}\", prefix: \"bench-$$-$STATE_SEQ:\"}}#" "$OUT/gateway.yaml"
}
sed -e "s/@MGCP_PORT@/$OSMO_MGCP/" -e "s/@RTP_MIN@/$RTP_MIN/" -e "s/@RTP_MAX@/$RTP_MAX/" \
    bench/conf/osmo-mgw.cfg >"$OUT/osmo-mgw.cfg"

RAMP=$(awk -v s="$RAMP_START" -v f="$RAMP_FACTOR" -v m="$RAMP_MAX" \
  'BEGIN{r=s; sep=""; while (r<=m) {printf "%s%d", sep, int(r/500+0.5)*500; sep=","; r*=f}}')

# --- SUT processes ------------------------------------------------------------
SUT_PID= PROFILES=0
cleanup() { [[ -n $SUT_PID ]] && kill "$SUT_PID" 2>/dev/null && wait "$SUT_PID" 2>/dev/null; SUT_PID=; }
trap cleanup EXIT INT TERM

wait_udp() { # port: wait until something listens on 127.0.0.1:port
  for _ in $(seq 100); do
    ss -Hlun "sport = :$1" 2>/dev/null | grep -q . && return 0
    kill -0 "$SUT_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

port_busy() { ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; }

start_sut() { # name: start a fresh instance pinned to the SUT core; SUT_PID is its process
  local name=$1 port
  cleanup
  case $name in
    osmo-mgw) port=$OSMO_MGCP ;; rtpengine) port=$RTPE_NG ;; mediagw) port=$GW_MGCP ;;
    sipp-uas) port=$SIPP_UAS ;; sipgo-uas) port=$SIPGO_UAS ;; mediagw-sip) port=$GW_SIP ;;
  esac
  if port_busy "$port"; then log "$name: port $port is already in use by another process"; return 1; fi
  # Started directly (nice execs taskset execs the SUT), so $! is the SUT itself.
  case $name in
    osmo-mgw) nice -n "$NICE" taskset -c $SUT_CORE osmo-mgw -c "$OUT/osmo-mgw.cfg" >>"$OUT/osmo-mgw.log" 2>&1 & ;;
    rtpengine) nice -n "$NICE" taskset -c $SUT_CORE rtpengine --config-file=none --table=-1 --interface=127.0.0.1 \
        --listen-ng=127.0.0.1:$RTPE_NG --port-min=$RTP_MIN --port-max=$RTP_MAX \
        --foreground --log-stderr --log-level=3 --num-threads=1 >>"$OUT/rtpengine.log" 2>&1 & ;;
    mediagw | mediagw-sip) fresh_state; nice -n "$NICE" taskset -c $SUT_CORE "$OUT/gateway" -config "$OUT/gateway.yaml" \
        ${PPROF:+-cpuprofile "$OUT/$name-$((++PROFILES)).pprof"} >>"$OUT/mediagw.log" 2>&1 & ;;
    sipp-uas) nice -n "$NICE" taskset -c $SUT_CORE sipp -sn uas -i 127.0.0.1 -p $SIPP_UAS \
        -buff_size 4194304 -nostdin >"$OUT/sipp-uas.log" 2>&1 & ;;
    sipgo-uas) nice -n "$NICE" taskset -c $SUT_CORE "$OUT/sipgouas" -listen 127.0.0.1:$SIPGO_UAS >"$OUT/sipgo-uas.log" 2>&1 & ;;
  esac
  SUT_PID=$!
  if ! wait_udp "$port"; then log "$name did not start (port $port)"; cleanup; return 1; fi
}

get() { # file key: value of key=... in file
  sed -n "s/^$2=//p" "$1" | tail -1
}

declare -A R # results: R[system.key]

relay_args() { # system → driver flags
  case $1 in
    osmo-mgw) echo "-driver mgcp -ctl 127.0.0.1:$OSMO_MGCP -wildcard rtpbridge/*@mgw" ;;
    rtpengine) echo "-driver rtpengine -ctl 127.0.0.1:$RTPE_NG" ;;
    mediagw) echo "-driver mgcp -ctl 127.0.0.1:$GW_MGCP -wildcard rtpbridge/\$@mgw" ;;
  esac
}

COMMANDS=()
run_load() { # outfile args...: run the generator, remember the command
  local out=$1; shift
  COMMANDS+=("taskset -c $GEN_CORE rtpload $*")
  load "$RTPLOAD" "$@" >"$out" 2>&1
}

relay_series() { # system
  local s=$1 f args knee over
  args=$(relay_args "$s")
  log "relay $s: ramp $RAMP_START..$RAMP_MAX pps x$RAMP_FACTOR, $CALLS calls, $STEP steps"
  start_sut "$s" || { R[$s.limit]=did_not_start; return; }
  f=$OUT/$s-relay-ramp.txt
  # shellcheck disable=SC2086
  run_load "$f" relay $args -a $GEN_A -b $GEN_B -ctl-local $CTL_LOCAL -calls "$CALLS" -rates "$RAMP" \
    -step "$STEP" -drain "$DRAIN" -pid "$SUT_PID" -sut-core $SUT_CORE -sut-ports $RTP_MIN-$RTP_MAX
  cleanup
  knee=$(get "$f" result_knee_pps)
  R[$s.knee]=${knee:-0}
  R[$s.limit]=$(get "$f" result_limit)
  R[$s.cpu]=$(get "$f" result_knee_cpu_s_per_mpkt)
  R[$s.p99]=$(get "$f" result_knee_p99_us)
  R[$s.p50]=$(get "$f" result_knee_p50_us)
  R[$s.knee_recv]=$(get "$f" result_knee_recv_pps)
  [[ -z $knee || $knee == 0 ]] && { log "relay $s: no loss-free step (see $f)"; return; }
  # The ramp's steps are RAMP_FACTOR apart and a long-running instance can
  # degrade: refine on a fresh instance in 5% steps above the knee.
  local refine
  refine=$(awk -v k="$knee" 'BEGIN{printf "%d,%d,%d", k*1.05, k*1.10, k*1.15}')
  log "relay $s: loss-free up to $knee pps; refining on a fresh instance at $refine pps"
  if start_sut "$s"; then
    f=$OUT/$s-relay-refine.txt
    # shellcheck disable=SC2086
    run_load "$f" relay $args -a $GEN_A -b $GEN_B -ctl-local $CTL_LOCAL -calls "$CALLS" -warmup-rate "$RAMP_START" \
      -rates "$refine" -retry 0 -step "$STEP" -drain "$DRAIN" -pid "$SUT_PID" -sut-core $SUT_CORE -sut-ports $RTP_MIN-$RTP_MAX
    cleanup
    local rk
    rk=$(get "$f" result_knee_pps)
    if [[ -n $rk && $rk -gt $knee ]]; then
      knee=$rk
      R[$s.knee]=$knee
      R[$s.limit]="$(get "$f" result_limit) (refined)"
      R[$s.cpu]=$(get "$f" result_knee_cpu_s_per_mpkt)
      R[$s.p99]=$(get "$f" result_knee_p99_us)
      R[$s.p50]=$(get "$f" result_knee_p50_us)
      R[$s.knee_recv]=$(get "$f" result_knee_recv_pps)
    fi
  fi
  over=$(awk -v k="$knee" 'BEGIN{printf "%d", k*1.2}')
  log "relay $s: capacity $knee pps; fresh instance at 1.2x = $over pps, then $RAMP_START pps to find stopped streams"
  start_sut "$s" || return
  f=$OUT/$s-relay-overload.txt
  # shellcheck disable=SC2086
  run_load "$f" relay $args -a $GEN_A -b $GEN_B -ctl-local $CTL_LOCAL -calls "$CALLS" -warmup-rate "$RAMP_START" \
    -rates "$over" -recover "$RAMP_START" -step "$STEP" -drain "$DRAIN" -pid "$SUT_PID" -sut-core $SUT_CORE \
    -sut-ports $RTP_MIN-$RTP_MAX
  cleanup
  R[$s.over_pps]=$over
  R[$s.over_recv]=$(get "$f" result_last_recv_pps)
  R[$s.over_share]=$(awk -v r="${R[$s.over_recv]:-0}" -v k="${R[$s.knee_recv]}" 'BEGIN{printf "%.1f", 100*r/k}')
  R[$s.over_p99]=$(get "$f" result_last_p99_us)
  R[$s.stopped]=$(get "$f" result_recover_silent)
}

tps_series() { # system
  local s=$1 f wc
  [[ $s == mediagw ]] && wc='rtpbridge/$@mgw' || wc='rtpbridge/*@mgw'
  local port=$OSMO_MGCP; [[ $s == mediagw ]] && port=$GW_MGCP
  log "mgcp $s: CRCX+DLCX pairs, concurrency $TPS_CONC, $TPS_DUR each"
  start_sut "$s" || return
  f=$OUT/$s-mgcp-tps.txt
  run_load "$f" mgcptps -ctl 127.0.0.1:$port -ctl-local $CTL_LOCAL -wildcard "$wc" -conc "$TPS_CONC" -dur "$TPS_DUR" -pid "$SUT_PID"
  cleanup
  R[$s.tps]=$(get "$f" result_best_pairs_per_s)
  R[$s.tps_conc]=$(get "$f" result_best_conc)
}

# The same CRCX+DLCX measurement on an instance that carries LOAD_CALLS
# relayed calls (two connections each, both directions) at LOAD_PPS in all
# (issue 17: a gateway that scans its connections slows down with load). The
# relay load runs from the generator core for the whole measurement and is
# judged as a relay step: its loss tells whether the media suffered.
tps_loaded_series() { # system
  local s=$1 f lf wc port relay_pid dur
  [[ $s == mediagw ]] && wc='rtpbridge/$@mgw' || wc='rtpbridge/*@mgw'
  port=$OSMO_MGCP; [[ $s == mediagw ]] && port=$GW_MGCP
  log "mgcp $s loaded: $LOAD_CALLS calls relaying $LOAD_PPS pps, CRCX+DLCX pairs, concurrency $TPS_CONC, $TPS_DUR each"
  start_sut "$s" || return
  f=$OUT/$s-mgcp-tps-loaded.txt lf=$OUT/$s-mgcp-load-relay.txt
  # long enough for the measurement: per concurrency TPS_DUR plus a second
  dur=$(awk -v c="$TPS_CONC" -v d="${TPS_DUR%s}" 'BEGIN{n=split(c, a, ","); printf "%ds", n*(d+1)+6}')
  local rargs=(relay $(relay_args "$s") -a $LOAD_A -b $LOAD_B -ctl-local $LOAD_CTL -calls "$LOAD_CALLS" -bidir
    -rates "$LOAD_PPS" -warmup 2s -step "$dur" -drain 500ms -retry 0 -pid "$SUT_PID")
  COMMANDS+=("taskset -c $GEN_CORE rtpload ${rargs[*]}  (in the background, while:)")
  load "$RTPLOAD" "${rargs[@]}" >"$lf" 2>&1 &
  relay_pid=$!
  for _ in $(seq 100); do grep -q '^setup_calls=' "$lf" && break; sleep 0.1; done
  sleep 2.5 # the warmup, then the judged step is running
  run_load "$f" mgcptps -ctl 127.0.0.1:$port -ctl-local $CTL_LOCAL -wildcard "$wc" -conc "$TPS_CONC" -dur "$TPS_DUR" -pid "$SUT_PID"
  wait "$relay_pid"
  cleanup
  R[$s.tps_loaded]=$(get "$f" result_best_pairs_per_s)
  R[$s.tps_loaded_conc]=$(get "$f" result_best_conc)
  R[$s.load_loss]=$(sed -n 's/^step=[0-9]* label=step .*loss_pct=\([0-9.]*\).*/\1/p' "$lf" | tail -1)
}

ng_series() { # system: rtpengine | mediagw
  local s=$1 f port=$RTPE_NG
  [[ $s == mediagw ]] && port=$GW_NG
  log "ng $s: $NG_LOAD calls loaded, offer+answer+delete cycles, concurrency $TPS_CONC, $TPS_DUR each"
  start_sut "$s" || return
  f=$OUT/$s-ng-tps.txt
  run_load "$f" ngtps -ctl 127.0.0.1:$port -ctl-local $CTL_LOCAL -load "$NG_LOAD" -conc "$TPS_CONC" -dur "$TPS_DUR" -pid "$SUT_PID"
  cleanup
  R[$s.ng]=$(get "$f" result_best_cycles_per_s)
  R[$s.ng_conc]=$(get "$f" result_best_conc)
  R[$s.ng_p99]=$(get "$f" result_best_cycle_p99_us)
}

sip_series() { # system: sipp-uas | sipgo-uas | mediagw-sip
  local s=$1 f=$OUT/$1-sip.txt best=0 r rc t0 t1 cps port=$SIPP_UAS
  [[ $s == mediagw-sip ]] && port=$GW_SIP
  [[ $s == sipgo-uas ]] && port=$SIPGO_UAS
  log "sip $s: sipp -sn uac steps $SIP_RATES calls/s, ${SIP_SECS}s each"
  start_sut "$s" || return
  : >"$f"
  for r in $SIP_RATES; do
    local m=$((r * SIP_SECS)) ok=0 try
    local cmd=(sipp -sn uac 127.0.0.1:$port -s echo -i 127.0.0.1 -p $SIPP_UAC -r "$r" -m "$m" -l $((r * 2))
      -buff_size 4194304 -nostdin -timeout 60s -timeout_error -recv_timeout 5000)
    [[ $r == "${SIP_RATES%% *}" ]] && COMMANDS+=("taskset -c $GEN_CORE ${cmd[*]}  (per step: -r R -m R*$SIP_SECS -l R*2)")
    for try in 1 2; do # a busy shared machine can spoil one step: a failed step runs once more
      t0=$(date +%s.%N)
      load "${cmd[@]}" >"$OUT/$s-sipp-uac-$r-$try.log" 2>&1; rc=$?
      t1=$(date +%s.%N)
      # pass: SIPp exit 0 (every call succeeded) and the calls took no longer than
      # the paced time + 10% + 0.5 s (a slow answerer makes SIPp fall behind its rate)
      cps=$(awk -v m="$m" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", m/(b-a)}')
      local inTime
      inTime=$(awk -v a="$t0" -v b="$t1" -v s="$SIP_SECS" 'BEGIN{print (b-a <= s*1.1+0.5) ? 1 : 0}')
      echo "rate=$r try=$try calls=$m exit=$rc elapsed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') achieved_cps=$cps" >>"$f"
      if [[ $rc == 0 && $inTime == 1 ]]; then ok=1; break; fi
    done
    ((ok)) || break
    best=$r
  done
  # Overload (issue 17): offered 1.5x the best step, how many calls/s still
  # complete (SIPp's successful calls over the step's time). A gateway that
  # sheds what it cannot take keeps ~its capacity; one that does not collapses.
  if [[ $best -gt 0 && ${SIP_OVERLOAD:-1} == 1 ]]; then
    r=$((best * 3 / 2)) m=$((best * 3 / 2 * SIP_SECS))
    sleep 1
    t0=$(date +%s.%N)
    load sipp -sn uac 127.0.0.1:$port -s echo -i 127.0.0.1 -p $SIPP_UAC -r "$r" -m "$m" -l $((r * 2)) \
      -buff_size 4194304 -nostdin -timeout 60s -recv_timeout 5000 >"$OUT/$s-sipp-uac-overload-$r.log" 2>&1
    t1=$(date +%s.%N)
    local okc
    okc=$(sed -n 's/^ *Successful call *| *[0-9]* *| *\([0-9]*\).*/\1/p' "$OUT/$s-sipp-uac-overload-$r.log" | tail -1)
    R[$s.overload_cps]=$(awk -v o="${okc:-0}" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", o/(b-a)}')
    R[$s.overload_ratio]=$(awk -v o="${R[$s.overload_cps]}" -v c="$best" 'BEGIN{printf "%.2f", o/c}')
    echo "overload rate=$r calls=$m successful=${okc:-0} elapsed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') completed_cps=${R[$s.overload_cps]} vs_capacity=${R[$s.overload_ratio]}" >>"$f"
  fi
  cleanup
  R[$s.cps]=$best
}

# --- run ------------------------------------------------------------------------
T_START=$(date +%s)
GEN_CEIL=
if part relay; then
log "generator ceiling (no SUT: generator sends to itself)"
run_load "$OUT/generator-loop.txt" relay -driver loop -a $GEN_A -b $GEN_B -calls "$CALLS" \
  -rates 100k,200k,300k,400k -step 3s -drain 500ms -stop-on-fail=false
fi
[[ -f $OUT/generator-loop.txt ]] && GEN_CEIL=$(sed -n 's/.*recv_pps=\([0-9]*\).*verdict=.*/\1/p' "$OUT/generator-loop.txt" | sort -n | tail -1)

for s in $SYSTEMS; do
  part relay || break
  [[ $s == mediagw && $HAVE_GW == 0 ]] && continue
  relay_series "$s"
done
for s in osmo-mgw mediagw; do
  part mgcp || break
  [[ " $SYSTEMS " == *" $s "* ]] || continue
  [[ $s == mediagw && $HAVE_GW == 0 ]] && continue
  tps_series "$s"
  [[ ${MGCP_LOADED:-1} == 1 ]] && tps_loaded_series "$s"
done
for s in rtpengine mediagw; do
  part ng || break
  [[ " $SYSTEMS " == *" $s "* ]] || continue
  [[ $s == mediagw && $HAVE_GW == 0 ]] && continue
  ng_series "$s"
done
if part sip; then
  [[ ${SIP_PEER:-1} == 1 ]] && sip_series sipp-uas
  [[ ${SIP_FLOOR:-1} == 1 ]] && sip_series sipgo-uas
  [[ $HAVE_GW == 1 && " $SYSTEMS " == *" mediagw "* ]] && sip_series mediagw-sip
fi
T_END=$(date +%s)

# --- report ----------------------------------------------------------------------
v() { local x=${R[$1]:-}; echo "${x:-n/a}"; }
ms() { local x=${R[$1]:-}; [[ -z $x ]] && echo n/a || awk -v u="$x" 'BEGIN{printf "%.1f", u/1000}'; }
ratio() { # a b
  local a=${R[$1]:-} b=${R[$2]:-}
  if [[ -z $a || -z $b || $b == 0 ]]; then echo n/a; else awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", a/b}'; fi
}

REPORT=$OUT/report.md
{
  echo "| system | loss-free relay (pps) | stopped by | CPU s / M pkt | p50 / p99 added latency (ms) | at 1.2x: forwarded, % of capacity | streams stopped for good |"
  echo "|---|---|---|---|---|---|---|"
  for s in $SYSTEMS; do
    echo "| $s | $(v $s.knee) | $(v $s.limit) | $(v $s.cpu) | $(ms $s.p50) / $(ms $s.p99) | $(v $s.over_share) (offered $(v $s.over_pps), p99 $(ms $s.over_p99) ms) | $(v $s.stopped) |"
  done
  echo "| generator alone (loop) | ceiling ${GEN_CEIL:-n/a} | | | | | |"
  echo
  echo "| system | MGCP CRCX+DLCX pairs/s (best concurrency) | SIP calls/s, 0 failures |"
  echo "|---|---|---|"
  echo "| osmo-mgw 1.10 | $(v osmo-mgw.tps) ($(v osmo-mgw.tps_conc)) | |"
  echo "| sipp -sn uas | | $(v sipp-uas.cps) |"
  echo "| sipgo's own UAS (no media: the floor) | | $(v sipgo-uas.cps) |"
  echo "| mediagw | $(v mediagw.tps) ($(v mediagw.tps_conc)) | $(v mediagw-sip.cps) |"
  echo
  echo "| system | MGCP CRCX+DLCX pairs/s with $LOAD_CALLS calls relaying $LOAD_PPS pps (best concurrency) | relay loss meanwhile (%) |"
  echo "|---|---|---|"
  echo "| osmo-mgw 1.10 | $(v osmo-mgw.tps_loaded) ($(v osmo-mgw.tps_loaded_conc)) | $(v osmo-mgw.load_loss) |"
  echo "| mediagw | $(v mediagw.tps_loaded) ($(v mediagw.tps_loaded_conc)) | $(v mediagw.load_loss) |"
  echo
  echo "| system | ng offer+answer+delete cycles/s, $NG_LOAD calls loaded (best concurrency) | cycle p99 (ms) |"
  echo "|---|---|---|"
  echo "| rtpengine | $(v rtpengine.ng) ($(v rtpengine.ng_conc)) | $(ms rtpengine.ng_p99) |"
  echo "| mediagw | $(v mediagw.ng) ($(v mediagw.ng_conc)) | $(ms mediagw.ng_p99) |"
} >"$REPORT"

NV=$OUT/results.txt
{
  echo "calls=$CALLS"
  echo "step=$STEP"
  echo "generator_ceiling_pps=${GEN_CEIL:-n/a}"
  for s in $SYSTEMS; do
    k=${s//-/_}
    echo "relay_loss_free_pps_$k=$(v $s.knee)"
    echo "relay_limit_$k=$(v $s.limit)"
    echo "relay_cpu_s_per_mpkt_$k=$(v $s.cpu)"
    echo "relay_p99_ms_$k=$(ms $s.p99)"
    echo "relay_overload_forwarded_pct_$k=$(v $s.over_share)"
    echo "relay_overload_stopped_streams_$k=$(v $s.stopped)"
  done
  echo "mgcp_pairs_per_s_osmo_mgw=$(v osmo-mgw.tps)"
  echo "mgcp_pairs_per_s_mediagw=$(v mediagw.tps)"
  echo "mgcp_loaded_pairs_per_s_osmo_mgw=$(v osmo-mgw.tps_loaded)"
  echo "mgcp_loaded_pairs_per_s_mediagw=$(v mediagw.tps_loaded)"
  echo "mgcp_loaded_relay_loss_pct_osmo_mgw=$(v osmo-mgw.load_loss)"
  echo "mgcp_loaded_relay_loss_pct_mediagw=$(v mediagw.load_loss)"
  echo "sip_cps_sipp_uas=$(v sipp-uas.cps)"
  echo "sip_cps_sipgo_uas=$(v sipgo-uas.cps)"
  echo "sip_cps_mediagw=$(v mediagw-sip.cps)"
  echo "sip_overload_cps_sipp_uas=$(v sipp-uas.overload_cps)"
  echo "sip_overload_cps_mediagw=$(v mediagw-sip.overload_cps)"
  echo "sip_overload_ratio_vs_capacity_mediagw=$(v mediagw-sip.overload_ratio)"
  echo "ng_cycles_per_s_rtpengine=$(v rtpengine.ng)"
  echo "ng_cycles_per_s_mediagw=$(v mediagw.ng)"
  echo "duration_s=$((T_END - T_START))"
  # a capacity that the generator, not the SUT, capped is a lower bound, and so is its ratio
  for s in $SYSTEMS; do
    [[ ${R[$s.limit]:-} == generator* ]] && echo "relay_lower_bound_${s//-/_}=1 # the generator could not offer more"
  done
  echo "relay_ratio_vs_rtpengine=$(ratio mediagw.knee rtpengine.knee)"
  echo "relay_ratio_vs_osmo_mgw=$(ratio mediagw.knee osmo-mgw.knee)"
  echo "mgcp_tps_ratio_vs_osmo_mgw=$(ratio mediagw.tps osmo-mgw.tps)"
  echo "mgcp_loaded_tps_ratio_vs_osmo_mgw=$(ratio mediagw.tps_loaded osmo-mgw.tps_loaded)"
  echo "sip_cps_ratio_vs_sipp_uas=$(ratio mediagw-sip.cps sipp-uas.cps)"
  echo "sip_cps_ratio_vs_sipgo_uas=$(ratio mediagw-sip.cps sipgo-uas.cps)"
  echo "sip_cps_ratio_sipgo_uas_vs_sipp_uas=$(ratio sipgo-uas.cps sipp-uas.cps)"
  echo "ng_ratio_vs_rtpengine=$(ratio mediagw.ng rtpengine.ng)"
} >"$NV"

cat "$REPORT"
echo
cat "$NV"

# The pictures: loss and p99 added latency against the offered rate, per system.
PLOT=
if part relay && go run ./bench/cmd/benchplot -out "$OUT" relay "$OUT" >/dev/null 2>"$OUT/benchplot.log"; then
  PLOT=$OUT/relay.png
  echo "relay plot: $PLOT"
fi

if [[ $RECORD == 1 ]]; then
  RES=$ROOT/bench/RESULTS.md
  ENTRY=$OUT/results-entry.md
  {
    echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
    echo
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), shared; SUT on core $SUT_CORE, generator on core $GEN_CORE, nice $NICE. $CALLS calls, $STEP steps + $DRAIN drain, ramp from $RAMP_START pps x$RAMP_FACTOR. Took $((T_END - T_START)) s."
    echo
    echo "Commands (SUT pinned with taskset -c $SUT_CORE):"
    echo
    echo '```'
    printf '%s\n' "${COMMANDS[@]}"
    echo '```'
    echo
    cat "$REPORT"
    echo
    echo '```'
    cat "$NV"
    echo '```'
    if [[ -n $PLOT ]]; then
      mkdir -p "$ROOT/bench/plots"
      cp "$PLOT" "$ROOT/bench/plots/relay-$STAMP.png"
      cp "$PLOT" "$ROOT/bench/relay.png"
      echo
      echo "![relay: loss and p99 added latency against offered rate](plots/relay-$STAMP.png)"
    fi
    echo
  } >"$ENTRY"
  [[ -f $RES ]] || printf '# Benchmark results\n\n' >"$RES"
  if ! grep -q '^## Peers' "$RES"; then
    printf '\n## Peers\n\nRuns of `bench/peers.sh` (issue 6), newest last. Method: bench/peers.sh and bench/cmd/rtpload.\n\n' >>"$RES"
  fi
  # insert the entry at the end of the Peers section (before the next "## " heading)
  awk -v entry="$ENTRY" '
    /^## / { if (inpeers && !done) { while ((getline l < entry) > 0) print l; done=1 } inpeers = ($0 ~ /^## Peers/) }
    { print }
    END { if (!done) while ((getline l < entry) > 0) print l }' "$RES" >"$RES.tmp" && mv "$RES.tmp" "$RES"
  log "recorded in bench/RESULTS.md"
fi
