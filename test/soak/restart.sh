#!/usr/bin/env bash
# make soak-restart (issue 13): 20,000 SIPp calls against a gateway with
# state.store file that is killed (SIGKILL) and started again on the same
# state every 5,000 calls, while SIPp goes on. Calls that were up at a kill
# are restored, so their BYE after the restart is answered in their dialog;
# INVITEs retransmitted over the gap are answered by the new process; an
# INVITE the old process had answered 100 Trying to is not retransmitted
# (RFC 3261 §17.1.1.2), so it fails after SIPp's -recv_timeout (20 s). It
# counts the calls in flight at each kill (the connections the gateway held)
# and fails when more calls failed than were in flight at the kills, or when
# anything is left at the end (connections, RTP ports).
# Knobs: CALLS (20000), EVERY (5000), RATE (calls/s, 300), HOLD (ms, 1000),
# STORE (file | redis: a redis-server started here).
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS=${CALLS:-20000}
EVERY=${EVERY:-5000}
RATE=${RATE:-300}
HOLD=${HOLD:-1000}
STORE=${STORE:-file}
OUT=${OUT:-test/soak/out/restart-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
go build -o "$OUT/gateway" ./cmd/gateway
STATE="{store: file, path: \"$OUT/gateway.state\"}"
REDIS=
if [[ $STORE == redis ]]; then
	redis-server --port 46379 --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
	REDIS=$!
	for _ in $(seq 50); do redis-cli -p 46379 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
	STATE="{store: redis, redis: {addr: \"127.0.0.1:46379\", prefix: \"soak:\"}}"
fi
cat >"$OUT/gateway.yaml" <<YAML
log: {level: info}
sip: {listen: ["udp://127.0.0.1:46060"]}
mgcp: {listen: "udp://127.0.0.1:46027"}
http: {listen: "127.0.0.1:46080"}
rtp: {bind: 127.0.0.1, external_ip: 127.0.0.1, port_min: 46100, port_max: 49099, media_timeout: 0s}
state: $STATE
YAML
GW= SIPP=
start_gw() {
	"$OUT/gateway" -config "$OUT/gateway.yaml" >>"$OUT/gateway.log" 2>&1 &
	GW=$!
	for _ in $(seq 100); do curl -sf 127.0.0.1:46080/healthz >/dev/null && return 0; sleep 0.05; done
	echo "soak-restart: the gateway did not come up"; tail -20 "$OUT/gateway.log"; exit 1
}
trap 'kill $GW $SIPP 2>/dev/null || true; [[ -n $REDIS ]] && kill $REDIS 2>/dev/null || true' EXIT
metric() { curl -s 127.0.0.1:46080/metrics | awk -v m="$1" '$1==m {print $2}'; }
start_gw
FREE0=$(metric mediagw_rtp_ports_free)

# SIPp's statistics every second: cumulative successful and failed calls.
sipp 127.0.0.1:46060 -sn uac -s echo -i 127.0.0.1 -p 45981 -m "$CALLS" -r "$RATE" -l 5000 -d "$HOLD" \
	-nostdin -timeout 900s -recv_timeout 20000 -trace_stat -stf "$OUT/sipp-stat.csv" -fd 1 -trace_err -error_file "$OUT/sipp-errors.log" \
	>"$OUT/sipp.log" 2>&1 &
SIPP=$!
col() { head -1 "$OUT/sipp-stat.csv" | tr ';' '\n' | grep -n -x "$1" | cut -d: -f1; }
done_calls() { # successful + failed so far
	[[ -s $OUT/sipp-stat.csv ]] || { echo 0; return; }
	local s f
	s=$(col 'SuccessfulCall(C)') f=$(col 'FailedCall(C)')
	tail -1 "$OUT/sipp-stat.csv" | awk -F';' -v s="$s" -v f="$f" '{print $s + $f}'
}
inflight=0 kills=0 next=$EVERY gaps=()
while kill -0 "$SIPP" 2>/dev/null; do
	if (( next < CALLS )) && (( $(done_calls) >= next )); then
		held=$(metric mediagw_connections_active)
		kill -9 "$GW"; wait "$GW" 2>/dev/null || true
		t0=$(date +%s%N)
		start_gw
		gaps+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
		kills=$((kills + 1)) inflight=$((inflight + ${held%.*}))
		echo "soak-restart: kill $kills at $(done_calls) calls done, $held connections up; back after ${gaps[-1]} ms"
		next=$((next + EVERY))
	fi
	sleep 0.2
done
wait "$SIPP" || true
s=$(col 'SuccessfulCall(C)') f=$(col 'FailedCall(C)')
read -r ok failed < <(tail -1 "$OUT/sipp-stat.csv" | awk -F';' -v s="$s" -v f="$f" '{print $s, $f}')
sleep 2
conns=$(metric mediagw_connections_active) free=$(metric mediagw_rtp_ports_free)
echo "soak-restart: $CALLS calls, $kills kills (SIGKILL + restart on the $STORE state), restarts took ${gaps[*]} ms"
echo "soak-restart: successful $ok, failed $failed, in flight at the kills $inflight (connections held)"
echo "soak-restart: at the end $conns connections, $free of $FREE0 RTP ports free"
fail=0
(( ok + failed == CALLS )) || { echo "soak-restart: SIPp finished $((ok + failed)) of $CALLS calls"; fail=1; }
(( failed <= inflight )) || { echo "soak-restart: more calls failed than were in flight at the kills"; fail=1; }
[[ ${conns%.*} == 0 && $free == "$FREE0" ]] || {
	echo "soak-restart: connections or ports left (listed in $OUT/left.json)"
	curl -s 127.0.0.1:46080/v1/connections >"$OUT/left.json"
	fail=1
}
exit $fail
