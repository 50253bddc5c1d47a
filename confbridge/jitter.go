package confbridge

import "math/bits"

// The jitter buffer is a ring of encoded G.711 octets indexed by RTP
// timestamp (one octet per sample), with a presence flag per sample. Placing
// data by timestamp makes reordering, duplicates, packet sizes other than the
// tick, and partial overlaps one operation: write the samples where they
// belong. Playout reads one tick of samples at playTs. The member's jmu
// guards it: HandleRTP puts, the bridge's tick plays.

const (
	jbSize    = 2048 // samples (256 ms at 8 kHz); a power of two
	jbMask    = jbSize - 1
	jumpLimit = 8000 // a timestamp move of more than 1 s starts a new timeline
	lateLimit = 8    // this many consecutive late packets also start one
	shrinkWin = 10   // ticks over which the minimum depth is watched
)

type frameKind uint8

const (
	frameSilent    frameKind = iota // nothing to play
	frameReal                       // received audio (possibly partly missing)
	frameConcealed                  // a repeat of the last frame, to be faded
)

// JitterStats counts what a member's jitter buffer saw.
type JitterStats struct {
	Received   uint64 // packets put into the buffer
	Late       uint64 // arrived after their playout time, dropped
	Duplicates uint64
	Lost       uint64 // frames missing at playout while later audio was there
	Concealed  uint64 // frames replaced by a faded repeat
	Underruns  uint64 // ticks with nothing to play while the stream was live
	Resyncs    uint64 // new timeline: first packet, SSRC change, timestamp jump
	Dropped    uint64 // frames skipped to shrink an over-deep buffer
	Depth      int    // current buffered audio in samples
	Target     int    // current target depth in samples
	JitterQ4   int64  // RFC 3550 interarrival jitter estimate, samples*16
}

type jitterBuffer struct {
	k        int32 // samples per tick
	minDepth int32 // target bounds, samples
	maxDepth int32

	synced  bool
	fast    bool // the next sync plays at once (promotion from hairpin)
	ssrc    uint32
	tsOff   uint32 // added to arriving timestamps: splices a new timeline onto the old
	hiSeq   uint16 // sequence number of the newest data
	playTs  uint32 // timestamp of the next sample to play
	hiTs    uint32 // end timestamp of the newest data
	preroll int32  // samples of deliberate delay left before the first packet
	holds   int32  // consecutive ticks playout was held on an underrun
	lates   int    // consecutive late packets
	conceal int    // consecutive missing frames

	lastTs   uint32 // the last frame played, still in buf, for concealment
	lastFull bool   // it was complete

	winTicks int
	winMin   int32

	transit     int64
	haveTransit bool
	jitterQ4    int64

	st JitterStats

	have bitmap // where buf holds a sample not yet played
	buf  [jbSize]byte
}

func (j *jitterBuffer) init(k, minDepth, maxDepth int) {
	j.k, j.minDepth, j.maxDepth = int32(k), int32(minDepth), int32(maxDepth)
}

// target is the depth to build at a sync: a tick plus three times the
// measured interarrival jitter, within [minDepth, maxDepth].
func (j *jitterBuffer) target() int32 {
	t := j.k + int32(3*j.jitterQ4/16)
	if t < j.minDepth {
		t = j.minDepth
	}
	if t > j.maxDepth {
		t = j.maxDepth
	}
	return t
}

func (j *jitterBuffer) reset() {
	if j.synced {
		j.have = bitmap{}
	}
	j.synced = false
	j.lastFull = false
	j.haveTransit = false
}

// sync starts playout of a stream from scratch: the first packet plays
// after the target delay (at once after a hairpin promotion).
func (j *jitterBuffer) sync(ssrc uint32, seq uint16, ts uint32) {
	if j.synced {
		j.have = bitmap{}
	}
	j.st.Resyncs++
	j.synced = true
	j.lastFull = false
	j.ssrc = ssrc
	j.tsOff = 0
	d := j.target()
	if j.fast {
		d = 0
		j.fast = false
	}
	j.playTs = ts - uint32(d)
	j.hiTs, j.hiSeq = ts, seq-1
	j.preroll = d
	j.holds = 0
	j.lates = 0
	j.haveTransit = false
	j.winTicks, j.winMin = 0, 1<<30
}

// splice continues playout on a new timeline (SSRC change, timestamp jump,
// restarted sender): the packet is placed right after the audio still
// buffered, or after the target delay when nothing is, so what was buffered
// still plays and nothing is heard twice.
func (j *jitterBuffer) splice(ssrc uint32, seq uint16, ts uint32, n int32) {
	j.st.Resyncs++
	j.ssrc = ssrc
	var land uint32
	if int32(j.hiTs-j.playTs) > 0 {
		land = j.hiTs
		if gap := int16(seq - j.hiSeq); gap > 1 && gap < 50 {
			land += uint32(int32(gap-1) * n)
		}
	} else {
		t := j.target()
		land = j.playTs + uint32(t)
		j.preroll = t
		j.hiTs = j.playTs
	}
	j.tsOff = land - ts
	j.holds = 0
	j.lates = 0
	j.haveTransit = false
}

// put stores one packet's payload. arrival is in samples of a local clock.
func (j *jitterBuffer) put(ssrc uint32, seq uint16, raw uint32, p []byte, arrival int64) {
	n := int32(len(p))
	if n == 0 || n > jbSize/2 {
		return
	}
	switch {
	case !j.synced:
		j.sync(ssrc, seq, raw)
	case ssrc != j.ssrc:
		j.splice(ssrc, seq, raw, n)
	}
	ts := raw + j.tsOff
	d := int32(ts - j.playTs)
	if d > jumpLimit || d < -jumpLimit || d+n > jbSize {
		j.splice(ssrc, seq, raw, n)
		ts = raw + j.tsOff
		d = int32(ts - j.playTs)
	}
	if d+n <= 0 {
		j.st.Late++
		j.lates++
		if j.lates < lateLimit {
			return
		}
		j.splice(ssrc, seq, raw, n) // the sender restarted its timeline
		ts = raw + j.tsOff
		d = int32(ts - j.playTs)
	}
	if d+n > jbSize { // no room after what is buffered: start afresh
		j.sync(ssrc, seq, raw)
		ts, d = raw, int32(raw-j.playTs)
	}
	j.lates = 0
	j.st.Received++

	// RFC 3550 A.8 interarrival jitter, in samples.
	transit := arrival - int64(ts)
	if j.haveTransit {
		dd := transit - j.transit
		if dd < 0 {
			dd = -dd
		}
		if dd < jumpLimit {
			j.jitterQ4 += dd - (j.jitterQ4+8)>>4
		}
	}
	j.transit, j.haveTransit = transit, true

	start := int32(0)
	if d < 0 {
		start = -d // the head is already played; keep the tail
	}
	if j.have.get(int((ts + uint32(start)) & jbMask)) {
		j.st.Duplicates++
	}
	j.write(ts+uint32(start), p[start:])
	if end := ts + uint32(n); int32(end-j.hiTs) > 0 {
		j.hiTs, j.hiSeq = end, seq
	}
}

// write stores samples at timestamp ts, in at most two runs of the ring.
func (j *jitterBuffer) write(ts uint32, p []byte) {
	pos := int(ts & jbMask)
	n := copy(j.buf[pos:], p)
	j.have.set(pos, n)
	if n < len(p) {
		copy(j.buf[:], p[n:])
		j.have.set(0, len(p)-n)
	}
}

// take moves k samples at ts into out (silence where missing), clears them
// and returns how many were present.
func (j *jitterBuffer) take(ts uint32, out []byte, silence byte) int32 {
	pos := int(ts & jbMask)
	if pos+len(out) > jbSize { // wraps: split
		n := jbSize - pos
		return j.take(ts, out[:n], silence) + j.take(ts+uint32(n), out[n:], silence)
	}
	switch present := j.have.count(pos, len(out)); present {
	case len(out):
		copy(out, j.buf[pos:])
		j.have.unset(pos, len(out))
		return int32(present)
	case 0:
		fill(out, silence)
		return 0
	}
	present := int32(0)
	for i := range out {
		if j.have.get(pos + i) {
			out[i] = j.buf[pos+i]
			present++
		} else {
			out[i] = silence
		}
	}
	j.have.unset(pos, len(out))
	return present
}

// play fills out (k samples) with the next tick of audio.
func (j *jitterBuffer) play(out []byte, silence byte) frameKind {
	k := j.k
	if !j.synced {
		fill(out, silence)
		return frameSilent
	}
	present := j.take(j.playTs, out[:k], silence)
	kind := frameReal
	if present > 0 {
		j.conceal = 0
		j.holds = 0
		j.lastTs, j.lastFull = j.playTs, present == k
		j.playTs += uint32(k)
	} else {
		ahead := int32(j.hiTs - j.playTs)
		switch {
		case j.preroll > 0:
			kind = frameSilent
			j.playTs += uint32(k)
		case ahead > 0: // later audio is here: this frame is lost
			j.st.Lost++
			kind = j.concealInto(out)
			j.playTs += uint32(k)
		case j.holds*k < j.maxDepth: // underrun: hold playout, the delay grows
			j.st.Underruns++
			j.holds++
			kind = j.concealInto(out)
		default: // the stream stopped (hold, silence suppression, hang-up)
			j.st.Underruns++
			j.reset()
			return frameSilent
		}
	}
	if j.preroll > 0 {
		j.preroll -= k
	}
	j.shrink()
	return kind
}

func (j *jitterBuffer) concealInto(out []byte) frameKind {
	j.conceal++
	if j.conceal == 1 && j.lastFull {
		// take clears only the presence flags: the last frame's octets are
		// still in the ring (nothing newer can land behind playTs).
		pos := int(j.lastTs & jbMask)
		n := copy(out[:j.k], j.buf[pos:])
		copy(out[n:j.k], j.buf[:])
		j.st.Concealed++
		return frameConcealed
	}
	return frameSilent
}

// shrink drops whole frames when the buffer stayed deeper than its target
// plus half a tick for a whole window, so a burst or a fast sender clock does
// not leave a permanent delay.
func (j *jitterBuffer) shrink() {
	depth := int32(j.hiTs - j.playTs)
	if depth < j.winMin {
		j.winMin = depth
	}
	j.winTicks++
	if j.winTicks < shrinkWin {
		return
	}
	if excess := j.winMin - j.target(); excess > j.k/2 {
		// Drop the excess in whole frames, oldest first.
		for excess > j.k/2 {
			j.discard(j.playTs, j.k)
			j.playTs += uint32(j.k)
			j.st.Dropped++
			excess -= j.k
		}
	}
	j.winTicks, j.winMin = 0, 1<<30
}

func (j *jitterBuffer) stats() JitterStats {
	s := j.st
	if j.synced {
		s.Depth = int(int32(j.hiTs - j.playTs))
	}
	s.Target = int(j.target())
	s.JitterQ4 = j.jitterQ4
	return s
}

// discard forgets n samples at ts.
func (j *jitterBuffer) discard(ts uint32, n int32) {
	pos := int(ts & jbMask)
	m := min(int(n), jbSize-pos)
	j.have.unset(pos, m)
	j.have.unset(0, int(n)-m)
}

// bitmap has one bit per sample of the ring.
type bitmap [jbSize / 64]uint64

// words calls f for each word of [pos, pos+n) (pos+n <= jbSize) with the
// mask of the range's bits in it.
func (b *bitmap) words(pos, n int, f func(w *uint64, mask uint64)) {
	for n > 0 {
		off := pos & 63
		m := min(64-off, n)
		mask := ^uint64(0)
		if m < 64 {
			mask = (uint64(1)<<m - 1) << off
		}
		f(&b[pos>>6], mask)
		pos += m
		n -= m
	}
}

func (b *bitmap) set(pos, n int)   { b.words(pos, n, func(w *uint64, m uint64) { *w |= m }) }
func (b *bitmap) unset(pos, n int) { b.words(pos, n, func(w *uint64, m uint64) { *w &^= m }) }
func (b *bitmap) get(pos int) bool { return b[pos>>6]&(1<<(pos&63)) != 0 }

func (b *bitmap) count(pos, n int) int {
	c := 0
	b.words(pos, n, func(w *uint64, m uint64) { c += bits.OnesCount64(*w & m) })
	return c
}

// fill sets every byte of b to v, by doubling copies.
func fill(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for i := 1; i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
}
