package sip

import "net/netip"

// signalingIP is the IP a request or response came from. The RTP proxy
// accepts a leg's first media packet from any port of it (a phone behind a
// NAT sends from its public address, whatever its SDP says), besides the
// SDP address itself; nothing else can take over the leg (issue 10). The
// zero Addr when the source is not an IP address.
func signalingIP(m interface{ Source() string }) netip.Addr {
	ap, err := netip.ParseAddrPort(m.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
