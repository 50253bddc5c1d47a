#!/usr/bin/env bash
# SIPp scenarios against the real gateway binary.
#
# Starts the gateway with test/sipp/gateway.yaml (SIP 36060 udp+tcp, MGCP
# 36427, HTTP 127.0.0.1:36080, RTP 34000-34099), runs every scenario, each
# SIPp on its own -p port, and asserts each SIPp's exit code (0 = every
# call succeeded). After the load run, /metrics must show no connection and
# every RTP port free. Exits non-zero if anything failed.
#
# Ports: everything stays in 36000-36099 and 34000-34099, the block that
# test/e2e leaves to this script: SIPp clients 36001-36029 (media 36030-
# 36057), the SIPp targets of the bridge routes 36071-36074 (media 36084-
# 36099).
#
# Needs SIPp 3.6 (Debian/Ubuntu: apt-get install -y sip-tester) and curl.
# Usage: test/sipp/run.sh [GATEWAY-BINARY]   (builds ./cmd/gateway if none)
#        KEEP=1 test/sipp/run.sh             keeps the work directory with logs
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/mediagw-sipp.XXXXXX)"
gw_pid=""
bg_pids=()
failed=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

cleanup() {
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	if [[ -n "$gw_pid" ]]; then kill "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null; fi
	if [[ "${KEEP:-}" == "" && $failed -eq 0 ]]; then rm -rf "$work"; else log "logs kept in $work"; fi
}
trap cleanup EXIT

command -v sipp >/dev/null || { echo "sipp not found: apt-get install -y sip-tester" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }
pcap=/usr/share/sip-tester/g711a.pcap
[[ -r $pcap ]] || { echo "$pcap missing (package sip-tester)" >&2; exit 2; }

bin="${1:-}"
if [[ -z "$bin" ]]; then
	log "building the gateway"
	bin="$work/mediagw"
	(cd "$root" && go build -o "$bin" ./cmd/gateway) || { echo "build failed" >&2; exit 1; }
fi
[[ -x "$bin" ]] || { echo "$bin: not an executable" >&2; exit 2; }

http=http://127.0.0.1:36080
gw=127.0.0.1:36060

metric() { # metric NAME[{labels}] -> value (0 when absent)
	curl -sf "$http/metrics" | awk -v m="$1" '$1 == m { print $2; found=1 } END { if (!found) print 0 }'
}

"$bin" -config "$here/gateway.yaml" >"$work/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 1 100); do
	curl -sf "$http/healthz" >/dev/null 2>&1 && break
	kill -0 "$gw_pid" 2>/dev/null || { cat "$work/gateway.log"; echo "gateway exited" >&2; exit 1; }
	sleep 0.1
done
curl -sf "$http/healthz" >/dev/null || { echo "gateway not ready" >&2; exit 1; }
ports_free="$(metric mediagw_rtp_ports_free)"
log "gateway up (pid $gw_pid, $ports_free RTP ports free)"

# Common SIPp options: loopback, no keyboard, bounded in time, errors logged.
# (-recv_timeout is generous: on a machine busy with other work a response
# can be seconds late; a real loss still fails the call.)
common=(-i 127.0.0.1 -mi 127.0.0.1 -nostdin -timeout 90s -timeout_error -recv_timeout 30000 -trace_err)
port=36000   # SIPp signalling port of the last client
mport=36030  # SIPp media port base of the last client (it binds base and base+2)

next_ports() {
	port=$((port + 1))
	mport=$((36030 + (mport - 36030 + 4) % 28))
	if ((port > 36029)); then echo "run.sh: out of SIPp ports" >&2; exit 2; fi
}

# sipp_run NAME ARGS...: runs one SIPp client in the foreground and checks
# its exit code.
sipp_run() {
	local name=$1; shift
	next_ports
	sipp "$@" "${common[@]}" -p "$port" -mp "$mport" -error_file "$work/$name.err" \
		>"$work/$name.out" 2>&1
	check "$name" $?
}

# sipp_bg NAME ARGS...: starts a SIPp in the background; its pid is in $!.
sipp_bg() {
	local name=$1; shift
	sipp "$@" "${common[@]}" -error_file "$work/$name.err" >"$work/$name.out" 2>&1 &
	bg_pids+=($!)
}

# sipp_wait NAME PID: waits for a background SIPp and checks its exit code.
sipp_wait() {
	wait "$2"
	check "$1" $?
}

check() {
	if [[ $2 -eq 0 ]]; then
		log "PASS $1"
	else
		log "FAIL $1 (sipp exit $2)"
		grep -hv -e '^The following events occurred' -e 'Overload warning' "$work/$1.err" 2>/dev/null | head -5
		failed=1
	fi
}

# Built-in uac into a conference and into echo, over UDP and TCP.
for t in u1 t1; do
	sipp_run "uac-conference-$t" "$gw" -sn uac -s conf-sipp -t "$t" -m 20 -r 20 -d 300
	sipp_run "uac-echo-$t" "$gw" -sn uac -s echo -t "$t" -m 20 -r 20 -d 300
done

# RTP playback of the packaged pcap (G.711 A-law, then an RFC 4733 digit),
# into echo and into a conference at the same time.
rtp_in="$(metric 'mediagw_rtp_packets_total{dir="in"}')"
next_ports
sipp_bg pcap-conference "$gw" -sf "$here/uac_pcap.xml" -s conf-pcap -m 1 -p "$port" -mp "$mport"
pcap_pid=$!
sipp_run pcap-echo "$gw" -sf "$here/uac_pcap.xml" -s echo -m 1
sipp_wait pcap-conference "$pcap_pid"
rtp_in2="$(metric 'mediagw_rtp_packets_total{dir="in"}')"
if (( rtp_in2 - rtp_in < 200 )); then
	log "FAIL pcap-rtp: the gateway received $((rtp_in2 - rtp_in)) RTP packets of the playback"
	failed=1
else
	log "PASS pcap-rtp ($((rtp_in2 - rtp_in)) RTP packets received)"
fi

# Hold and resume with re-INVITEs, over UDP and TCP.
sipp_run hold-u1 "$gw" -sf "$here/hold.xml" -s conf-hold -t u1 -m 2 -r 2
sipp_run hold-t1 "$gw" -sf "$here/hold.xml" -s conf-hold -t t1 -m 2 -r 2

# CANCEL of a ringing bridge call: route ring-<user> calls <user>@127.0.0.1:36071.
sipp_bg uas-ring -sf "$here/uas_ring.xml" -p 36071 -mp 36084 -m 1
uas_pid=$!
sleep 0.3
sipp_run cancel-ringing-bridge "$gw" -sf "$here/cancel_uac.xml" -s ring-bob -m 1
sipp_wait uas-ring "$uas_pid"

# REFER to one of our own conferences (r2, with a member made over HTTP):
# conf-r1 is linked to it; the caller then hangs up and r2 stays.
res="$(curl -sf -X POST "$http/v1/actions/CreateConference" -d '{"ConferenceId":"r2","MediaTxIP":"127.0.0.1","MediaTxPort":"36099"}')"
if [[ "$res" != *'"ResultCode": "0"'* ]]; then
	log "FAIL refer-own-conference setup: $res"
	failed=1
fi
sipp_run refer-own-conference "$gw" -sf "$here/refer_conf.xml" -s conf-r1 -key referto conf-r2 -m 1
res="$(curl -sf -X POST "$http/v1/actions/DeleteConnection" -d '{"ConferenceId":"r2"}')"
if [[ "$res" != *'"ConferenceReleased": "true"'* ]]; then
	log "FAIL refer-own-conference: conference r2 did not outlive the linked call: $res"
	failed=1
fi

# REFER to an external target (a second SIPp, built-in uas): the target is
# invited into conference rx; the referrer hangs up itself. The conference
# is then released over the HTTP API, which hangs the target up.
sipp_bg uas-refer-target -sn uas -p 36072 -mp 36088 -m 1
uas_pid=$!
sleep 0.3
sipp_run refer-external "$gw" -sf "$here/refer_ext.xml" -s conf-rx -key referto sip:carol@127.0.0.1:36072 -m 1
res="$(curl -sf -X POST "$http/v1/actions/DeleteConnection" -d '{"ConferenceId":"rx"}')"
if [[ "$res" != *'"ResultCode": "0"'* ]]; then
	log "FAIL http-release: $res"
	failed=1
fi
sipp_wait uas-refer-target "$uas_pid"

# BYE in both directions: the uac runs above hang up themselves; here the
# bridge target (route hangup-<user> to 127.0.0.1:36073) hangs up and the
# gateway must BYE the caller.
sipp_bg uas-hangup -sf "$here/uas_bye.xml" -p 36073 -mp 36092 -m 1
uas_pid=$!
sleep 0.3
sipp_run bye-from-gateway "$gw" -sf "$here/uac_wait_bye.xml" -s hangup-dave -m 1
sipp_wait uas-hangup "$uas_pid"

# ... and over TCP: a conference released over the HTTP API hangs up its
# SIP leg with a BYE on the caller's TCP connection.
next_ports
sipp_bg bye-from-gateway-tcp "$gw" -sf "$here/uac_wait_bye.xml" -s conf-tcpbye -t t1 -m 1 -p "$port" -mp "$mport"
uac_pid=$!
for _ in $(seq 1 50); do
	[[ "$(metric mediagw_connections_active)" == 1 ]] && break
	sleep 0.1
done
curl -sf -X POST "$http/v1/actions/DeleteConnection" -d '{"ConferenceId":"tcpbye"}' >/dev/null
sipp_wait bye-from-gateway-tcp "$uac_pid"

# Bridge calls under load: the built-in uac calls br-bob, the gateway calls
# SIPp's built-in uas on 36074 and relays (each call holds two port pairs).
sipp_bg uas-bridge -sn uas -p 36074 -mp 36096 -m 200 -buff_size 4194304
uas_pid=$!
sleep 0.3
sipp_run bridge-200-calls "$gw" -sn uac -s br-bob -m 200 -r 50 -l 20 -d 200
sipp_wait uas-bridge "$uas_pid"

# Load: 1,000 calls at 100 calls/s spread over ten conferences (calls of
# 100 ms; at most 40 at once, within the 50 port pairs of the test range).
sipp_run load-1000-calls "$gw" -sf "$here/uac_load.xml" -inf "$here/confs.csv" \
	-m 1000 -r 100 -l 40 -d 100 -buff_size 4194304
grep -E 'Successful call|Failed call' "$work/load-1000-calls.out" | tail -2

# Everything released: no connection, every port free. (A 2xx whose ACK
# never comes is held 64*T1 = 32 s before the gateway gives up with a BYE.)
ok=0
for _ in $(seq 1 450); do
	conns="$(metric mediagw_connections_active)"
	free="$(metric mediagw_rtp_ports_free)"
	if [[ "$conns" == 0 && "$free" == "$ports_free" ]]; then ok=1; break; fi
	sleep 0.1
done
if (( ok )); then
	log "PASS released: 0 connections, $free RTP ports free"
else
	log "FAIL released: $conns connections, $free of $ports_free RTP ports free"
	failed=1
fi

# Graceful stop.
kill -TERM "$gw_pid"
wait "$gw_pid"
rc=$?
gw_pid=""
if [[ $rc -ne 0 ]]; then
	log "FAIL gateway exit status $rc"
	failed=1
fi

if (( failed )); then
	log "SIPp scenarios FAILED"
	exit 1
fi
log "all SIPp scenarios passed"
