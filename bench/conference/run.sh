#!/usr/bin/env bash
# Conference capacity benchmark (issue 5): K conferences of M members with
# real RTP over loopback, the gateway pinned to one core and the phones
# (bench/conference, sendmmsg/recvmmsg) to the other. Steps the number of
# member legs up until late ticks or mixed-packet loss pass 0.1% or a
# listener stops hearing a talker, then measures one 200-member conference.
# Then, in the same run, the machine's ceilings for the same legs (issue 17):
# the gateway relaying them as two-party calls with no mixing (-mode relay,
# MGCP rtpbridge) and the phones playing them to each other without the
# gateway (-mode loop). MODES="conference" skips the ceilings.
# Ends with:
#   conference_legs_per_core=N
#   conference_tick_jitter_p99_ms=X
#   conference_relay_legs_per_core=N     (the no-mixing ceiling)
#   conference_generator_legs=N          (the phones' ceiling)
#   conference_ratio_vs_relay=R          (mixing's share: goal >= 0.8)
# and records the run in the "Conference" section of bench/RESULTS.md
# (RECORD=0 skips that).
# PLAY=1 plays a tone into every conference for the whole run (issue 12:
# what a Play costs a conference).
# Usage: bench/conference/run.sh [extra flags for the load program]
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=bench/out/conference
mkdir -p "$OUT"
HTTP=127.0.0.1:59080
GW_CPU=${GW_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
# Other work on a shared machine preempts the gateway and the phones for
# milliseconds at a time, which shows up as late ticks and tick jitter that
# are not the gateway's. As root the run gets a session of its own whose
# autogroup runs at nice -20 (with autogroup scheduling nice only ranks
# processes within one session; bench/peers.sh does the same), and the
# gateway and the phones run at round-robin real-time priority, as a media
# server is deployed (the kernel still leaves 5% of each core to others).
# PRIO="" runs without real-time priority; NICE=0 also drops the nice.
NICE=${NICE:--20}
if [ "$(id -u)" != 0 ]; then NICE=0; fi
if [ "$NICE" != 0 ] && [ -w /proc/self/autogroup ] && [ -z "${CONF_BENCH_SESSION:-}" ]; then
	CONF_BENCH_SESSION=1 exec setsid --wait "$(readlink -f "$0")" "$@"
fi
if [ "$NICE" != 0 ] && [ -w /proc/self/autogroup ]; then echo "$NICE" >/proc/self/autogroup 2>/dev/null || true; fi
if [ -z "${PRIO+set}" ]; then
	if [ "$(id -u)" = 0 ]; then PRIO="chrt -r 10"; else PRIO=""; fi
fi
if [ "$(nproc)" -lt 2 ]; then
	echo "conference bench: needs two cores (gateway and phones on separate ones)" >&2
	exit 1
fi

go build -o "$OUT/gateway" ./cmd/gateway
go build -o "$OUT/confload" ./bench/conference

cat >"$OUT/gateway.yaml" <<'YAML'
log: {level: warn, format: text}
sip:
  listen: ["udp://127.0.0.1:59060"]
mgcp:
  listen: "udp://127.0.0.1:59427"
rtp:
  bind: "127.0.0.1"
  port_min: 10000
  port_max: 49999
  media_timeout: 0s
resources: {rtp: 0, enhanced_rtp: 100, conference: 0}
conference: {ptime: 20ms, codecs: [PCMU, PCMA]}
http:
  listen: "127.0.0.1:59080"
state: {store: none}
YAML

$PRIO taskset -c "$GW_CPU" "$OUT/gateway" -config "$OUT/gateway.yaml" 2>"$OUT/gateway.log" &
GW=$!
echo "$GW" >"$OUT/gateway.pid"
cleanup() { kill "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 100); do
	if curl -fsS "http://$HTTP/healthz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$GW" 2>/dev/null; then
		echo "conference bench: gateway exited; see $OUT/gateway.log" >&2
		exit 1
	fi
	sleep 0.1
done

T0=$(date +%s)
{
	echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); gateway on cpu $GW_CPU, phones on cpu $LOAD_CPU, autogroup nice $NICE${PRIO:+, $PRIO}"
	PLAYFLAG=()
	if [ "${PLAY:-0}" = 1 ]; then PLAYFLAG=(-play); fi
	for mode in ${MODES:-conference relay loop}; do
		FLAGS=("${PLAYFLAG[@]}")
		if [ "$mode" != conference ]; then FLAGS=(-big 0); fi
		GOMAXPROCS=1 $PRIO taskset -c "$LOAD_CPU" "$OUT/confload" -mode "$mode" -http "$HTTP" -mgcp 127.0.0.1:59427 -gw-pid "$GW" "${FLAGS[@]}" "$@"
	done >"$OUT/ladders.txt"
	cat "$OUT/ladders.txt"
	val() { sed -n "s/^$1=//p" "$OUT/ladders.txt" | tail -1; }
	CONF=$(val conference_legs_per_core)
	RELAY=$(val conference_relay_legs_per_core)
	GEN=$(val conference_generator_legs)
	if [ -n "$CONF" ] && [ -n "$RELAY" ] && [ "$RELAY" -gt 0 ]; then
		echo "conference_ratio_vs_relay=$(awk -v a="$CONF" -v b="$RELAY" 'BEGIN { printf "%.2f", a / b }')"
		if [ -n "$GEN" ] && [ "$RELAY" -ge "$GEN" ]; then
			echo "# the relays reached the phones' own ceiling: the no-mixing ceiling is at least $RELAY legs"
		fi
	fi
} | tee "$OUT/result.txt"
T1=$(date +%s)

# The picture: CPU per member-second and late ticks against the legs mixed.
PLOT=
if go run ./bench/cmd/benchplot -out "$OUT" conference "$OUT/result.txt" >/dev/null 2>"$OUT/benchplot.log"; then
	PLOT=$OUT/conference.png
	echo "conference plot: $PLOT"
fi

# Record the run at the end of the "Conference" section of bench/RESULTS.md
# (RECORD=0 skips), leaving the other sections as they are.
if [ "${RECORD:-1}" != 0 ]; then
	RES=bench/RESULTS.md
	ENTRY=$OUT/results-entry.md
	{
		echo "### $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- confbridge cmd rtpproxy session control 2>/dev/null || echo '+dirty'), took $((T1 - T0)) s"
		echo
		echo "Command: \`${PLAY:+PLAY=$PLAY }make bench-conference\` (\`bench/conference/run.sh${*:+ $*}\`); gateway pinned with \`taskset -c $GW_CPU\`, phones with \`taskset -c $LOAD_CPU\`."
		echo
		echo '```'
		cat "$OUT/result.txt"
		echo '```'
		echo
		if [ -n "$PLOT" ]; then
			STAMP=$(date -u +%Y%m%d-%H%M%S)
			mkdir -p bench/plots
			cp "$PLOT" "bench/plots/conference-$STAMP.png"
			cp "$PLOT" bench/conference.png
			echo "![conference: CPU per member-second and late ticks against legs](plots/conference-$STAMP.png)"
			echo
		fi
	} >"$ENTRY"
	[ -f "$RES" ] || printf '# Benchmark results\n\n' >"$RES"
	if ! grep -q '^## Conference' "$RES"; then
		printf '\n## Conference\n\nRuns of `bench/conference/run.sh` (issue 5), newest last. A step passes when late mixer ticks and mixed packets missing at the phones both stay under 0.1%% and every checked member hears every other talker (and no talker itself) in 95%% of the 20 ms frames; `conference_legs_per_core` is the last passing step.\n\n' >>"$RES"
	fi
	awk -v entry="$ENTRY" '
		/^## / { if (inconf && !done) { while ((getline l < entry) > 0) print l; done = 1 } inconf = ($0 ~ /^## Conference/) }
		{ print }
		END { if (!done) while ((getline l < entry) > 0) print l }' "$RES" >"$RES.tmp" && mv "$RES.tmp" "$RES"
	echo "# recorded in $RES" >&2
fi
