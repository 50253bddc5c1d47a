package rtpproxy

import (
	"net/netip"
	"sync/atomic"
)

// Who may send to a leg (issue 10, "media hijack").
//
// Before a leg has latched, its first packet is accepted only from
//   - the address signalling named (SetRemote: the SDP c=/m= address, MGCP
//     SDP, HTTP MediaTxIP:MediaTxPort), exactly; or
//   - any port of the signalling source's IP (SetSignalingIP: the IP the
//     SIP request came from), the phone-behind-a-NAT case.
//
// A leg that knows neither accepts nothing (and sends nothing) until
// signalling gives it one: an MGCP CRCX without SDP or an HTTP
// ReserveConnection waits for its MDCX or CreateConnection/ModifyConnection.
// The accepted packet latches the leg to its source (symmetric RTP).
//
// After latching, with strict_source a packet from another address is
// dropped (reason "source"); without it, it is handled but does not move the
// latch. The latch moves again only when signalling sets a remote or
// signalling IP (SetRemote, SetSignalingIP: re-INVITE, MDCX, ModifyConnection),
// or when the latched source has been silent for relatch_after and a packet
// comes from an address signalling allows (the rules above).
//
// RTCP latches on its own: its first packet is accepted from the RTP
// remote's SDP address with port+1, from the RTP remote's IP once RTP has
// latched, or from the signalling source's IP.

// latch is a remote address and whether it was learned from (or confirmed
// by) a received packet, with what signalling allowed. Values are replaced
// whole, never changed in place.
type latch struct {
	addr    netip.AddrPort // where to send: the latched source, or sdp until latched
	sdp     netip.AddrPort // the address signalling named; zero when unknown
	sig     netip.Addr     // the signalling source's IP; zero when unknown
	latched bool
}

// SetRemote sets the remote address from signalling (the zero value for
// unknown). Latching starts over under the rules above.
func (l *Leg) SetRemote(ap netip.AddrPort) {
	if ap.IsValid() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	cur := l.remote.Load()
	l.remote.Store(&latch{addr: ap, sdp: ap, sig: cur.sig})
	l.rtcpRemote.Store(&latch{})
}

// SetSignalingIP sets the IP the signalling for this leg came from (the zero
// value for none): a first packet from any port of it may latch the leg
// (phones behind a NAT). Latching starts over; the remote address stays.
func (l *Leg) SetSignalingIP(ip netip.Addr) {
	if ip.IsValid() {
		ip = ip.Unmap()
	}
	cur := l.remote.Load()
	l.remote.Store(&latch{addr: cur.sdp, sdp: cur.sdp, sig: ip})
	l.rtcpRemote.Store(&latch{})
}

// allowed says whether signalling allows src to latch an RTP socket.
func (c *latch) allowed(src netip.AddrPort) bool {
	return (c.sdp.IsValid() && src == c.sdp) || (c.sig.IsValid() && src.Addr() == c.sig)
}

// acceptRTP applies the rules above to an RTP packet from src arriving at
// monotonic time now, and reports whether to take it. The common case (the
// latched source) is one atomic load and a comparison.
func (l *Leg) acceptRTP(src netip.AddrPort, now int64) bool {
	cur := l.remote.Load()
	if cur.latched && cur.addr == src {
		return true
	}
	return l.acceptOther(&l.remote, cur, src, now, false, false)
}

// acceptRTCP is acceptRTP for the RTCP socket.
func (l *Leg) acceptRTCP(src netip.AddrPort, now int64) bool {
	cur := l.rtcpRemote.Load()
	if cur.latched && cur.addr == src {
		return true
	}
	return l.acceptOther(&l.rtcpRemote, cur, src, now, true, false)
}

// mayAcceptRTP is acceptRTP without latching: whether a packet from src
// would be taken (a refusal is counted). SRTP legs ask it before spending a
// decryption and latch (acceptRTP) only once the packet authenticated, so a
// packet with a spoofed source address cannot latch a leg.
func (l *Leg) mayAcceptRTP(src netip.AddrPort, now int64) bool {
	cur := l.remote.Load()
	if cur.latched && cur.addr == src {
		return true
	}
	return l.acceptOther(&l.remote, cur, src, now, false, true)
}

// mayAcceptRTCP is mayAcceptRTP for the RTCP socket.
func (l *Leg) mayAcceptRTCP(src netip.AddrPort, now int64) bool {
	cur := l.rtcpRemote.Load()
	if cur.latched && cur.addr == src {
		return true
	}
	return l.acceptOther(&l.rtcpRemote, cur, src, now, true, true)
}

// rtcpAllowed says whether signalling (or the latched RTP source) allows
// src to latch the RTCP socket.
func (l *Leg) rtcpAllowed(src netip.AddrPort) bool {
	rtp := l.remote.Load()
	switch {
	case rtp.sig.IsValid() && src.Addr() == rtp.sig:
		return true
	case rtp.latched && src.Addr() == rtp.addr.Addr():
		return true
	case rtp.sdp.IsValid() && rtp.sdp.Port() < 65535:
		return src == netip.AddrPortFrom(rtp.sdp.Addr(), rtp.sdp.Port()+1)
	}
	return false
}

// acceptOther handles a packet that is not from the latched source: latch
// it, take it unlatched, or drop it (counted). Latching allocates a latch,
// once per change of remote. dry decides without latching.
func (l *Leg) acceptOther(r *atomic.Pointer[latch], cur *latch, src netip.AddrPort, now int64, rtcp, dry bool) bool {
	allowed := func(src netip.AddrPort) bool {
		if rtcp {
			return l.rtcpAllowed(src)
		}
		return cur.allowed(src)
	}
	for {
		if cur.latched {
			if cur.addr == src {
				return true
			}
			if l.pool.lay.relatch > 0 && now-l.st.lastRx.Load() >= l.pool.lay.relatch && allowed(src) {
				if dry {
					return true
				}
				if r.CompareAndSwap(cur, &latch{addr: src, sdp: cur.sdp, sig: cur.sig, latched: true}) {
					return true
				}
				cur = r.Load()
				continue
			}
			if !l.pool.lay.strict {
				return true // heard, but the latch stays
			}
			l.st.drops[DropSource].Add(1)
			return false
		}
		if !allowed(src) {
			l.st.drops[DropSource].Add(1)
			return false
		}
		if dry {
			return true
		}
		// A concurrent SetRemote wins and we look again.
		if r.CompareAndSwap(cur, &latch{addr: src, sdp: cur.sdp, sig: cur.sig, latched: true}) {
			return true
		}
		cur = r.Load()
	}
}
