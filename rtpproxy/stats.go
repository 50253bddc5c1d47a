package rtpproxy

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Stats are a leg's media statistics. Octets count RTP payload only
// (RFC 3550 §6.4.1: no header, CSRC list, extension or padding).
type Stats struct {
	PacketsSent, OctetsSent         uint64
	PacketsReceived, OctetsReceived uint64
	PacketsLost                     int64         // expected - received over all sources; never negative
	Jitter, Latency                 time.Duration // RFC 3550 interarrival jitter; mean RTCP round-trip time
}

// rtpHeader is what the statistics need of an RTP header.
type rtpHeader struct {
	pt      uint8
	seq     uint16
	ts      uint32
	ssrc    uint32
	payload int // payload octets: after CSRCs and extension, before padding
}

const rtpHeaderLen = 12

// parseRTP reads the fixed header and works out the payload size. It accepts
// version 2 packets whose CSRC list, extension and padding fit in b.
func parseRTP(b []byte) (h rtpHeader, ok bool) {
	if len(b) < rtpHeaderLen || b[0]>>6 != 2 {
		return h, false
	}
	off := rtpHeaderLen + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension: 16-bit profile, 16-bit length in words
		if len(b) < off+4 {
			return h, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: the last octet counts the padding octets, itself included
		pad := int(b[end-1])
		if pad == 0 {
			return h, false
		}
		end -= pad
	}
	if off > end {
		return h, false
	}
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	h.payload = end - off
	return h, true
}

// payloadLen is the payload size of pkt, or its size past the fixed header
// when it is not a well-formed RTP packet.
func payloadLen(pkt []byte) int {
	if h, ok := parseRTP(pkt); ok {
		return h.payload
	}
	if len(pkt) > rtpHeaderLen {
		return len(pkt) - rtpHeaderLen
	}
	return 0
}

// staticClockRate is the RTP clock of the static payload types of RFC 3551;
// 0 where the type is dynamic or unassigned.
var staticClockRate = [128]uint32{
	0: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
	10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025,
	17: 22050, 18: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000,
	33: 90000, 34: 90000,
}

// Sequence tracking limits of RFC 3550 appendix A.1.
const (
	maxDropout  = 3000
	maxMisorder = 100
	seqMod      = 1 << 16
)

// maxTransitDelta bounds one jitter sample so a clock jump cannot overflow.
const maxTransitDelta = int64(10 * time.Second)

// counters are read by Stats from any goroutine. Receive-side fields are
// written only by the leg's RTP reader; send-side fields by whoever calls Send.
type counters struct {
	pktsIn, octetsIn atomic.Uint64
	lost             atomic.Int64
	jitter           atomic.Int64 // nanoseconds
	lastRx           atomic.Int64 // monotonic nanoseconds since epoch of the last packet; 0 = none
	drops            [NumDropReasons]atomic.Uint64
	_                [64]byte // keep the sender's counters off the reader's cache line
	pktsOut          atomic.Uint64
	octetsOut        atomic.Uint64
	rttSum, rttN     atomic.Int64 // RTCP round trips measured, in nanoseconds
}

// receiver is the receive-side state of RFC 3550 appendix A.1 and A.8. It is
// owned by the RTP reader goroutine, which publishes results into counters.
type receiver struct {
	started  bool
	ssrc     uint32
	baseSeq  uint32
	maxSeq   uint16
	cycles   uint32
	badSeq   uint32 // seqMod+1 when none pending
	received int64  // packets counted since the source (re)started
	lostPrev int64  // loss of earlier sources and restarts

	// jitter, in nanoseconds scaled by 16 (A.8 keeps jitter scaled by 16 too)
	jitter16    int64
	haveTransit bool
	lastArrival int64
	lastTS      uint32
	lastPT      uint8
	rate        uint32 // clock of lastPT

	dynRate uint32 // clock assumed for dynamic payload types

	events eventState // RFC 4733 events (events.go)
}

// update counts one packet from the accepted source, arrived at now
// (monotonic nanoseconds). It returns the loss and jitter to publish.
func (r *receiver) update(h *rtpHeader, now int64) (lost int64, jitter time.Duration) {
	if !r.started || h.ssrc != r.ssrc {
		r.restart(h)
		r.ssrc = h.ssrc
		r.started = true
		r.haveTransit = false
	} else {
		r.updateSeq(h.seq)
	}
	r.updateJitter(h, now)
	return r.lost(), time.Duration(r.jitter16 >> 4)
}

// restart begins a new sequence space at h.seq, keeping the loss so far.
func (r *receiver) restart(h *rtpHeader) {
	if r.started {
		r.lostPrev += r.currentLost()
	}
	r.baseSeq = uint32(h.seq)
	r.maxSeq = h.seq
	r.cycles = 0
	r.badSeq = seqMod + 1
	r.received = 1
}

func (r *receiver) updateSeq(seq uint16) {
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout: // in order, with a permissible gap
		if seq < r.maxSeq {
			r.cycles += seqMod
		}
		r.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder: // a very large jump
		if uint32(seq) == r.badSeq {
			// Two sequential packets: the source restarted without telling.
			r.restart(&rtpHeader{seq: seq})
			return
		}
		r.badSeq = (uint32(seq) + 1) & (seqMod - 1)
		return // not counted until confirmed
	default:
		// duplicate or reordered packet: counted, max unchanged
	}
	r.received++
}

func (r *receiver) currentLost() int64 {
	expected := int64(r.cycles) + int64(r.maxSeq) - int64(r.baseSeq) + 1
	return expected - r.received
}

func (r *receiver) lost() int64 {
	l := r.lostPrev + r.currentLost()
	if l < 0 { // duplicates can make it negative (RFC 3550 §6.4.1)
		return 0
	}
	return l
}

// updateJitter applies J += (|D| - J)/16 with D the difference of relative
// transit times of this packet and the previous one in arrival order,
// computed in nanoseconds.
func (r *receiver) updateJitter(h *rtpHeader, now int64) {
	rate := staticClockRate[h.pt]
	if rate == 0 {
		rate = r.dynRate
		if rate == 0 {
			rate = 8000
		}
	}
	if !r.haveTransit || h.pt != r.lastPT || rate != r.rate {
		// A new source or a new clock: transit times do not compare.
		r.haveTransit = true
		r.lastPT, r.rate = h.pt, rate
		r.lastArrival, r.lastTS = now, h.ts
		return
	}
	dts := int64(int32(h.ts - r.lastTS))
	d := (now - r.lastArrival) - dts*int64(time.Second)/int64(rate)
	if d < 0 {
		d = -d
	}
	if d > maxTransitDelta {
		d = maxTransitDelta
	}
	r.jitter16 += d - ((r.jitter16 + 8) >> 4)
	r.lastArrival, r.lastTS = now, h.ts
}
