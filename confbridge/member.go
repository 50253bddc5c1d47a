package confbridge

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Output is where a member's mixed (or relayed) RTP goes; *rtpproxy.Leg
// satisfies it. Send is called from the engine's tick goroutine (and, while
// hairpinned, from the peer's HandleRTP); pkt is valid only during the call.
type Output interface{ Send(pkt []byte) error }

const (
	maxPayload             = 480 // largest G.711 payload taken for mixing (60 ms)
	maxPacket              = 1500
	defaultDTMFPayloadType = 101
)

// Member is one connection in a bridge. Set it as the leg's RTP handler.
type Member struct {
	id    string
	codec Codec
	law   *law
	out   Output
	b     *Bridge
	k     int

	// Attributes: written and read under b.mu.
	muted, recvOnly, coach, pupil bool

	closed  atomic.Bool
	peer    atomic.Pointer[Member] // hairpin: relay what arrives straight to this member
	eventPT atomic.Uint32

	// jmu guards the jitter buffer and the event state. HandleRTP puts a
	// packet's payload straight into the jitter buffer and the tick takes a
	// frame out: a few hundred nanoseconds each, so the lock is held briefly
	// by at most two goroutines (the leg's receive loop and the mixer).
	jmu  sync.Mutex
	jb   jitterBuffer
	dtmf dtmfState

	// Counters written by HandleRTP.
	malformed, wrongPT, oversize, relayed atomic.Uint64

	// The digit tap (TapDetect) also hears packets relayed while the
	// bridge is hairpinned: HandleRTP decodes them into hpBuf (owned by
	// HandleRTP's goroutine) for it.
	hpTap atomic.Pointer[func(pcm []int16)]
	hpBuf [maxFrame]int16

	// Owned by the tick (under b.mu).
	talking bool
	told    bool // the talking state last reported through Options.OnTalk
	inMix   bool // its audio is in this tick's sum
	hang    int

	// Output stream. omu guards the fields from here to obuf: the tick
	// writes mixed frames, and while hairpinned the peer's HandleRTP relays.
	omu      sync.Mutex
	ssrc     uint32
	seq      uint16 // next sequence number
	lastTs   uint32 // timestamp of the last packet sent
	lastN    int    // its samples
	lastSend int64  // engine clock (ns)
	started  bool
	mark     bool // set the marker bit on the next packet (new timeline)
	hpSet    bool // hairpin mapping established for hpSSRC
	hpSSRC   uint32
	hpSeqOff uint16
	hpTsOff  uint32
	sent     uint64
	sendErrs uint64
	obuf     [maxPacket]byte

	// Tick-owned (under b.mu), last so the fields above share lines.
	ops    mediaOps // media.go
	frame  [maxFrame]byte
	pcm    [maxFrame]int16
	tapBuf [maxFrame]int16
	srcBuf [maxFrame]int16
}

func newMember(b *Bridge, id string, codec Codec, out Output) *Member {
	e := b.eng
	m := &Member{id: id, codec: codec, law: codec.law(), out: out, b: b, k: e.k}
	m.jb.init(e.k, samplesOf(e.cfg.JitterMin), samplesOf(e.cfg.JitterMax))
	m.eventPT.Store(defaultDTMFPayloadType)
	m.ssrc = rand.Uint32()
	m.seq = uint16(rand.Uint32())
	m.lastTs = rand.Uint32()
	m.mark = true
	return m
}

// ID returns the member's identifier within its bridge.
func (m *Member) ID() string { return m.id }

// Codec returns the member's codec.
func (m *Member) Codec() Codec { return m.codec }

// SSRC returns the SSRC of the stream the bridge sends to this member.
func (m *Member) SSRC() uint32 {
	m.omu.Lock()
	defer m.omu.Unlock()
	return m.ssrc
}

// SetEventPayloadType sets the RTP payload type of RFC 4733 telephone-events
// from this member (negotiated in SDP; default 101).
func (m *Member) SetEventPayloadType(pt uint8) { m.eventPT.Store(uint32(pt & 0x7f)) }

// HandleRTP takes one received RTP packet; pkt is valid only during the call.
// It never allocates, logs or blocks on the mixer.
func (m *Member) HandleRTP(pkt []byte) {
	if m.closed.Load() {
		return
	}
	h, ok := parseRTP(pkt)
	if !ok {
		m.malformed.Add(1)
		return
	}
	payload := pkt[h.off:h.end]
	if uint32(h.pt) == m.eventPT.Load() {
		m.handleEvent(&h, payload)
		if p := m.peer.Load(); p != nil {
			p.relay(&h, payload, m.b.eng.now())
		}
		return
	}
	if h.pt != uint8(m.codec) {
		m.wrongPT.Add(1)
		return
	}
	now := m.b.eng.now()
	if p := m.peer.Load(); p != nil {
		p.relay(&h, payload, now)
		m.relayed.Add(1)
		if tap := m.hpTap.Load(); tap != nil {
			n := min(len(payload), len(m.hpBuf))
			m.law.decode(m.hpBuf[:n], payload[:n])
			(*tap)(m.hpBuf[:n])
		}
		return
	}
	if len(payload) > maxPayload || len(payload) == 0 {
		m.oversize.Add(1)
		return
	}
	m.jmu.Lock()
	m.jb.put(h.ssrc, h.seq, h.ts, payload, now/int64(1e9/sampleRate))
	m.jmu.Unlock()
}

// play takes the next frame out of the jitter buffer (tick side).
func (m *Member) play(k int) frameKind {
	m.jmu.Lock()
	kind := m.jb.play(m.frame[:k], m.law.silence)
	m.jmu.Unlock()
	return kind
}

// nextTs is the timestamp of a packet sent now on the output stream: right
// after the last one, or further on by the time that passed when the stream
// paused (mode switch, skipped ticks). Called with omu held.
func (m *Member) nextTs(now int64) uint32 {
	if !m.started {
		return m.lastTs
	}
	step := int64(m.lastN)
	elapsed := (now - m.lastSend) / int64(1e9/sampleRate)
	if elapsed > int64(m.lastN)+int64(m.k/2) {
		step = (elapsed + int64(m.k/2)) / int64(m.k) * int64(m.k)
	}
	return m.lastTs + uint32(step)
}

// emit sends the n-sample payload already in obuf[12:] as the next packet of
// the mixed stream. Called with omu held.
func (m *Member) emit(pt uint8, n int, now int64) {
	ts := m.nextTs(now)
	putRTPHeader(m.obuf[:], pt, m.mark, m.seq, ts, m.ssrc)
	m.mark = false
	m.seq++
	m.lastTs, m.lastN, m.lastSend, m.started = ts, n, now, true
	m.hpSet = false
	m.send(rtpHeaderLen + n)
}

func (m *Member) send(n int) {
	if err := m.out.Send(m.obuf[:n]); err != nil {
		m.sendErrs++
		return
	}
	m.sent++
}

// relay forwards a packet of the hairpin peer onto this member's output
// stream: same payload, our SSRC, and sequence numbers and timestamps
// continued from what this member last received, so a switch between mixing
// and relaying shows the receiver no gap and no jump.
func (m *Member) relay(h *rtpHeader, payload []byte, now int64) {
	if len(payload) > maxPacket-rtpHeaderLen {
		return
	}
	m.omu.Lock()
	if !m.hpSet || m.hpSSRC != h.ssrc {
		m.hpSet, m.hpSSRC = true, h.ssrc
		m.hpSeqOff = m.seq - h.seq
		m.hpTsOff = m.nextTs(now) - h.ts
		m.mark = true
	}
	seq := h.seq + m.hpSeqOff
	ts := h.ts + m.hpTsOff
	putRTPHeader(m.obuf[:], h.pt, h.marker || m.mark, seq, ts, m.ssrc)
	m.mark = false
	copy(m.obuf[rtpHeaderLen:], payload)
	if int16(seq-m.seq) >= 0 {
		m.seq = seq + 1
		if h.pt == uint8(m.codec) {
			m.lastTs, m.lastN = ts, len(payload)
		}
		m.lastSend, m.started = now, true
	}
	m.send(rtpHeaderLen + len(payload))
	m.omu.Unlock()
}

// dtmfState follows RFC 4733 events of one member (under jmu).
type dtmfState struct {
	active bool
	ssrc   uint32
	ts     uint32
	ended  bool
}

func (m *Member) handleEvent(h *rtpHeader, p []byte) {
	if len(p) < 4 {
		m.malformed.Add(1)
		return
	}
	event, end := p[0], p[1]&0x80 != 0
	fn := m.b.opts.OnDigit
	m.jmu.Lock()
	d := &m.dtmf
	start := !d.active || d.ssrc != h.ssrc || d.ts != h.ts
	if start {
		*d = dtmfState{active: true, ssrc: h.ssrc, ts: h.ts}
	}
	reportEnd := end && !d.ended
	if reportEnd {
		d.ended = true
	}
	m.jmu.Unlock()
	if fn == nil {
		return
	}
	if start {
		fn(m.id, event, false)
	}
	if reportEnd {
		fn(m.id, event, true)
	}
}
