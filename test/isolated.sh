#!/usr/bin/env bash
# Runs a command in a network namespace of its own (loopback only) whose
# ephemeral ports are 39000-58999, clear of the fixed test ports of
# docs/contracts.md: a socket bound to port 0 (a sipgo client, Kamailio's
# rtpengine socket, a Redis client) can otherwise take a port that a test
# binds a moment later (CI failed so: SIPp's callee "Unable to bind main
# socket, errno = 98"). The range is narrowed rather than the test ports
# reserved (ip_local_reserved_ports): the kernel skips a reserved block to
# the first free port after it, which made 39000/39001 the port that a
# fifth of all port-0 binds got. Every test speaks only to loopback, so it
# needs nothing outside. Without root or unshare the command runs here,
# unisolated.
set -euo pipefail
ephemeral="39000 58999"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare --net true 2>/dev/null; then
	exec unshare --net -- bash -c '
		set -e
		ip link set lo up
		echo "$0" > /proc/sys/net/ipv4/ip_local_port_range
		exec "$@"' "$ephemeral" "$@"
fi
echo "isolated.sh: not root or no unshare: running without a namespace; a port-0 socket may take a test port" >&2
exec "$@"
