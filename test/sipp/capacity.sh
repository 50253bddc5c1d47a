#!/usr/bin/env bash
# Call rate the gateway sustains with 0 failed calls, beside what SIPp's own
# UAS (sipp -sn uas) sustains answering the same SIPp client with the same
# options. Each call is INVITE, 200, ACK, BYE; through the gateway each call
# also allocates and releases an RTP port pair (echo route) or a conference
# membership (conf-<n> route).
#
# The system under test runs on CPU 1, the SIPp client on CPU 0
# (taskset). Client options: -buff_size 4194304, no pause (-d 0), at most 40
# calls at once (the test port range has 50 pairs), 5 s per step.
# Usage: test/sipp/capacity.sh [GATEWAY-BINARY] [RATES...]
# Not part of `make test`: timings depend on the machine.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/mediagw-capacity.XXXXXX)"
sut_pid=""
trap '[[ -n "$sut_pid" ]] && kill "$sut_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

bin="${1:-}"
shift || true
rates=("$@")
((${#rates[@]})) || rates=(100 200 300 400 600 800 1000 1200 1500)
if [[ -z "$bin" ]]; then
	bin="$work/mediagw"
	(cd "$root" && go build -o "$bin" ./cmd/gateway) || exit 1
fi
sed 's/level: info/level: warn/' "$here/gateway.yaml" >"$work/gateway.yaml"

client=(taskset -c 0 sipp 127.0.0.1:36060 -sn uac -i 127.0.0.1 -mi 127.0.0.1 -p 36001 -mp 36030
	-nostdin -timeout 60s -timeout_error -buff_size 4194304 -d 0 -l 40)

start_gateway() {
	taskset -c 1 "$bin" -config "$work/gateway.yaml" >"$work/sut.log" 2>&1 &
	sut_pid=$!
	for _ in $(seq 1 100); do curl -sf http://127.0.0.1:36080/healthz >/dev/null && return; sleep 0.1; done
	echo "gateway not ready" >&2
	exit 1
}
start_uas() {
	taskset -c 1 sipp -sn uas -i 127.0.0.1 -mi 127.0.0.1 -p 36060 -mp 36084 -nostdin -buff_size 4194304 \
		>"$work/sut.log" 2>&1 &
	sut_pid=$!
	sleep 0.5
}
stop_sut() { kill "$sut_pid" 2>/dev/null; wait "$sut_pid" 2>/dev/null; sut_pid=""; }

# cpu_ticks PID: user+system CPU time of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# step LABEL SERVICE RATE: prints the achieved rate, successful and failed
# calls, and the CPU the system under test used (100% = its one core).
step() {
	local out="$work/$1-$3.out"
	local c0 t0 c1 t1
	c0=$(cpu_ticks "$sut_pid"); t0=$(date +%s%N)
	"${client[@]}" -s "$2" -r "$3" -m $(($3 * 5)) >"$out" 2>&1
	local rc=$?
	c1=$(cpu_ticks "$sut_pid"); t1=$(date +%s%N)
	local cpu=$(( (c1 - c0) * 100 * 1000000000 / $(getconf CLK_TCK) / (t1 - t0) ))
	local ok fail rate
	ok=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); print $3 }' "$out" | tail -1)
	fail=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); print $3 }' "$out" | tail -1)
	rate=$(awk -F'|' '/Call Rate/ { gsub(/ /, "", $3); print $3 }' "$out" | tail -1)
	printf '%-20s %5s cps  achieved %-12s ok %-6s failed %-4s SUT CPU %3s%%  exit %s\n' "$1" "$3" "$rate" "$ok" "$fail" "$cpu" "$rc"
	[[ $rc -eq 0 && "$fail" == 0 ]]
}

for target in gateway-echo gateway-conference sipp-uas; do
	best=0
	for r in "${rates[@]}"; do
		case $target in
		sipp-uas) start_uas; svc=service ;;
		gateway-echo) start_gateway; svc=echo ;;
		gateway-conference) start_gateway; svc=conf-cap ;;
		esac
		if step "$target" "$svc" "$r"; then best=$r; else stop_sut; break; fi
		stop_sut
	done
	echo "== $target: highest step with 0 failed calls: $best cps"
done
