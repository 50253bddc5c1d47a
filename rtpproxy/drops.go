package rtpproxy

// DropReason says why a received packet was thrown away.
type DropReason int

const (
	DropSource     DropReason = iota // from an address the leg does not accept (see latch.go)
	DropMalformed                    // not a well-formed RTP or RTCP packet
	DropSRTPAuth                     // SRTP/SRTCP authentication failed (forged or mangled)
	DropSRTPReplay                   // SRTP/SRTCP packet seen before (replay)
	NumDropReasons
)

// String is the reason's metric label.
func (r DropReason) String() string {
	switch r {
	case DropSource:
		return "source"
	case DropMalformed:
		return "malformed"
	case DropSRTPAuth:
		return "srtp_auth"
	case DropSRTPReplay:
		return "srtp_replay"
	}
	return "unknown"
}

// Drops are packets dropped, by reason.
type Drops [NumDropReasons]uint64

// Drops returns the packets dropped by all legs, open or closed, since the
// pool was made. Each leg counts its own (no counter is shared between
// packet loops); this sums them. Packets for idle pairs are not counted.
func (p *Pool) Drops() Drops {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.closedDrops
	for l := range p.live {
		l.st.addDrops(&d)
	}
	return d
}

// Drops returns the packets this leg dropped, by reason.
func (l *Leg) Drops() Drops {
	var d Drops
	l.st.addDrops(&d)
	return d
}

func (c *counters) addDrops(d *Drops) {
	for i := range d {
		d[i] += c.drops[i].Load()
	}
}
