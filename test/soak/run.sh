#!/usr/bin/env bash
# make soak (issue 10): 100,000 SIPp calls and 100,000 MGCP CRCX+DLCX
# cycles against one gateway (a plain build, no race detector), with RSS,
# open fds and goroutines sampled every 10 s into $OUT/samples.csv. It fails
# when a call fails or when, after the load and a settle, the gateway holds
# anything (connections, ports), its goroutines are not back (+5), or its
# RSS is not flat (the last sample within 10% of the one 30 s before; the
# peak and the end are printed: the heap keeps the maps a load grew).
# Knobs: CALLS (100000), RATE (calls/s, 1000), CYCLES_DUR (MGCP seconds, 20).
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS=${CALLS:-100000}
RATE=${RATE:-1000}
CYCLES_DUR=${CYCLES_DUR:-20}
OUT=${OUT:-test/soak/out/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
go build -o "$OUT/gateway" ./cmd/gateway
go build -o "$OUT/rtpload" ./bench/cmd/rtpload
cat > "$OUT/gateway.yaml" <<YAML
log: {level: warn}
sip: {listen: ["udp://127.0.0.1:46060"]}
mgcp: {listen: "udp://127.0.0.1:46027"}
http: {listen: "127.0.0.1:46080"}
rtp: {bind: 127.0.0.1, external_ip: 127.0.0.1, port_min: 46100, port_max: 49099, media_timeout: 0s}
state: {store: none}
YAML
"$OUT/gateway" -config "$OUT/gateway.yaml" >"$OUT/gateway.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true; kill $SAMPLER 2>/dev/null || true' EXIT
sleep 1
metric() { curl -s 127.0.0.1:46080/metrics | awk -v m="$1" '$1==m {print $2}'; }
sample() {
	local rss fds gor
	rss=$(awk '/VmRSS/{print $2}' /proc/$GW/status)
	fds=$(ls /proc/$GW/fd | wc -l)
	gor=$(metric go_goroutines)
	echo "$(date +%s),$rss,$fds,$gor,$(metric mediagw_connections_active),$(metric mediagw_rtp_ports_free)"
}
echo "time,rss_kb,fds,goroutines,connections,rtp_ports_free" >"$OUT/samples.csv"
sample >>"$OUT/samples.csv"
BASE=$(tail -1 "$OUT/samples.csv")
(while sleep 10; do sample >>"$OUT/samples.csv"; done) &
SAMPLER=$!

echo "soak: $CALLS SIPp calls at $RATE/s"
sipp 127.0.0.1:46060 -sn uac -s conf-soak -i 127.0.0.1 -p 45980 -m "$CALLS" -r "$RATE" -l 2000 -d 200 \
	-nostdin -timeout 900s -trace_stat -stf "$OUT/sipp-stat.csv" >"$OUT/sipp.log" 2>&1 || { echo "soak: SIPp failed"; tail -30 "$OUT/sipp.log"; exit 1; }
echo "soak: MGCP CRCX+DLCX for ${CYCLES_DUR}s (at least 100,000 cycles)"
"$OUT/rtpload" mgcptps -ctl 127.0.0.1:46027 -ctl-local 127.0.0.1:45990 -wildcard 'rtpbridge/$@mgw' -conc 16 -dur "${CYCLES_DUR}s" -pid $GW | tee "$OUT/mgcp.txt"
pairs=$(awk -F= '/^result_best_pairs_per_s=/{print $2}' "$OUT/mgcp.txt")
echo "soak: settling 60 s"
sleep 60
kill $SAMPLER
END=$(sample)
echo "$END" >>"$OUT/samples.csv"
echo "soak: start $BASE"
echo "soak: end   $END (time,rss_kb,fds,goroutines,connections,rtp_ports_free)"
IFS=, read -r _ rss0 fds0 gor0 _ free0 <<<"$BASE"
IFS=, read -r _ rss1 fds1 gor1 conns1 free1 <<<"$END"
fail=0
[[ $conns1 == 0 && $free1 == "$free0" ]] || { echo "soak: connections or ports not back"; fail=1; }
(( gor1 <= gor0 + 5 )) || { echo "soak: goroutines $gor0 -> $gor1"; fail=1; }
(( fds1 <= fds0 + 3000 + 5 )) || { echo "soak: fds $fds0 -> $fds1 (released RTP pairs stay bound: at most the range)"; fail=1; }
rss30=$(tail -4 "$OUT/samples.csv" | head -1 | cut -d, -f2)
peak=$(tail -n +2 "$OUT/samples.csv" | cut -d, -f2 | sort -n | tail -1)
echo "soak: RSS start $rss0 kB, peak $peak kB, 30 s before the end $rss30 kB, end $rss1 kB"
(( rss1 * 10 <= rss30 * 11 )) || { echo "soak: RSS still growing at the end"; fail=1; }
echo "soak: MGCP best pairs/s $pairs; samples in $OUT/samples.csv"
exit $fail
