#!/usr/bin/env bash
# Installs the external test peers the suite drives, when they are missing:
# SIPp (sip-tester), osmo-mgw (MGCP oracle), tshark (wire checks; editcap
# comes with it), systemd-analyze (checks deploy/systemd), chromium (drives
# the web console), redis-server (the store package's Redis tests start their
# own, on a loopback port), Kamailio with its rtpengine module (the ng
# front's proxy), rtpengine (the ng oracle), sipvicious (svmap/svwar/svcrack:
# admission under scanning), python3 (the digest UA in test/auth) and
# openssl (s_client against the SIP TLS listener), baresip (a real phone:
# REFER into a conference, conference membership) and Asterisk's English
# prompts (real speech for the DTMF detector, real prompts for Play), and
# iproute2 (test/isolated.sh's network namespace).
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v osmo-mgw >/dev/null 2>&1 || need+=(osmo-mgw)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v editcap >/dev/null 2>&1 || need+=(wireshark-common)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v kamailio >/dev/null 2>&1 || need+=(kamailio) # Debian's package has the rtpengine module
command -v rtpengine >/dev/null 2>&1 || need+=(rtpengine-daemon)
command -v svwar >/dev/null 2>&1 || need+=(sipvicious)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v openssl >/dev/null 2>&1 || need+=(openssl) # s_client checks the SIP TLS listener's certificate
command -v ip >/dev/null 2>&1 || need+=(iproute2) # test/isolated.sh brings up the test namespace's loopback
command -v baresip >/dev/null 2>&1 || need+=(baresip-core) # a real phone: aufile, ctrl_tcp and menu modules
[[ -d /usr/share/asterisk/sounds/en_US_f_Allison ]] || need+=(asterisk-core-sounds-en-wav) # real speech: the in-band DTMF detector must not fire on it; prompts for Play
if ((${#need[@]} == 0)); then
	exit 0
fi
echo "test/tools.sh: installing ${need[*]}" >&2
SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
