package rtpproxy

// RFC 4733 telephone-events a leg receives, reported to the control side
// for legs whose packets no mixer reads (relays, loopback, unattached):
// once at an event's start, once at its end (repeated end packets counted
// once). The state is the RTP reader's own; the handler is swapped
// atomically, so the packet path takes no lock and allocates nothing.

// EventFunc hears a leg's telephone-events: the RFC 4733 event code (0-9,
// 10 '*', 11 '#', 12-15 A-D, others as sent) at the event's start, and
// again with end set when it ends. It runs on the leg's reader goroutine
// and must not block.
type EventFunc func(event byte, end bool)

type eventTap struct {
	pt uint8
	fn EventFunc
}

// eventState follows the current event (owned by the RTP reader).
type eventState struct {
	active bool
	ssrc   uint32
	ts     uint32 // an event's packets share the timestamp of its start
	ended  bool
}

// SetEvents reports the telephone-events the leg receives with payload type
// pt to fn; fn nil (or pt 0) stops it.
func (l *Leg) SetEvents(pt uint8, fn EventFunc) {
	if fn == nil || pt == 0 {
		l.events.Store(nil)
		return
	}
	l.events.Store(&eventTap{pt: pt, fn: fn})
}

// AudioFunc receives the payload of each received packet of the tapped
// payload type (after SRTP, latching and the direction check), on the
// leg's reader before the packet is routed. It must not block, keep the
// slice or allocate: it runs once per packet.
type AudioFunc func(payload []byte)

type audioTap struct {
	pt uint8
	fn AudioFunc
}

// SetAudioTap hands fn the payload of every received packet of payload
// type pt (a static type such as 0 or 8); a nil fn removes the tap.
func (l *Leg) SetAudioTap(pt uint8, fn AudioFunc) {
	if fn == nil {
		l.audio.Store(nil)
		return
	}
	l.audio.Store(&audioTap{pt: pt, fn: fn})
}

// payloadOf is the payload h describes within pkt (before padding).
func payloadOf(h *rtpHeader, pkt []byte) []byte {
	end := len(pkt)
	if pkt[0]&0x20 != 0 {
		end -= int(pkt[end-1])
	}
	return pkt[end-h.payload : end]
}

// observeEvent runs the RFC 4733 state machine on one received packet of
// the tap's payload type.
func (s *eventState) observe(h *rtpHeader, pkt []byte, fn EventFunc) {
	end := len(pkt)
	if pkt[0]&0x20 != 0 {
		end -= int(pkt[end-1])
	}
	if h.payload < 4 || end-h.payload < 0 {
		return
	}
	p := pkt[end-h.payload : end]
	event, isEnd := p[0], p[1]&0x80 != 0
	start := !s.active || s.ssrc != h.ssrc || s.ts != h.ts
	if start {
		*s = eventState{active: true, ssrc: h.ssrc, ts: h.ts}
		fn(event, false)
	}
	if isEnd && !s.ended {
		s.ended = true
		fn(event, true)
	}
}
