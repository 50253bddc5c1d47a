package confbridge

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Options configure one bridge.
type Options struct {
	// Hairpin lets a bridge of two members with the same codec relay their
	// packets directly (no decode, no encode, Mixing() false); it becomes a
	// mixer when a third member joins, a member gets an attribute, or a tone
	// plays, and a relay again when that ends.
	Hairpin bool
	// JoinTone and LeaveTone play a short tone to the conference when a
	// member joins or leaves.
	JoinTone, LeaveTone bool
	// OnDigit reports RFC 4733 telephone-events (which are never mixed): once
	// when an event starts (end false) and once when it ends (end true). It is
	// called from the member's receive goroutine and must not block.
	OnDigit func(memberID string, event byte, end bool)
	// OnTalk reports a member starting (true) or stopping (false) to talk,
	// by the talker detector below with its hang-over. It is called from
	// the mixer's goroutine after the tick, outside the bridge's lock, and
	// must not block (talk.go).
	OnTalk func(memberID string, talking bool)
	// TalkThreshold is the mean absolute sample level (0..32767) from which a
	// member counts as talking; 0 means the default (150), a negative value
	// makes every unmuted member with audio a talker.
	TalkThreshold int
	// Hangover keeps a member a talker this long after its level dropped
	// (default 200 ms), so word endings and short pauses are not cut.
	Hangover time.Duration
}

const (
	defaultTalkThreshold = 150
	defaultHangover      = 200 * time.Millisecond
)

// Errors returned by Bridge methods, checked with errors.Is.
var (
	ErrClosed        = errors.New("confbridge: bridge closed")
	ErrMemberExists  = errors.New("confbridge: member already in bridge")
	ErrUnknownMember = errors.New("confbridge: no such member")
	ErrCodec         = errors.New("confbridge: codec not mixable")
	ErrInvalidMember = errors.New("confbridge: invalid member")
)

// Bridge is one conference: members' audio is mixed every tick and each
// member hears everyone else (N−1). All its state is guarded by mu, which the
// engine's tick holds while it mixes; HandleRTP never takes it.
type Bridge struct {
	eng  *Engine
	sh   *shard
	opts Options
	k    int
	thr  int
	hang int // ticks

	mu         sync.Mutex // guards every field below
	members    []*Member
	byID       map[string]*Member
	closed     bool
	registered bool
	hairpin    bool    // members are linked and relay directly
	tone       []int16 // tone being played, nil when none
	tonePos    int
	sum        [maxFrame]int32
	coachSum   [maxFrame]int32
	mix        [maxFrame]int32
	shared     [2]sharedMix // the mix for members whose own audio is not in it, per law
	talkOut    []talkChange // talker changes of the last tick, reported after unlock (talk.go)
	ended      []func()     // media operations that ended this tick, called after unlock (media.go)
	src        Source       // played to every member (PlayAll), nil when none
	srcDone    func()
	srcBuf     [maxFrame]int16
	mixTap     func(pcm []int16) // SetMixTap
	mixTapBuf  [maxFrame]int16
}

type sharedMix struct {
	valid bool
	buf   [maxFrame]byte
}

func newBridge(e *Engine, s *shard, opts Options) *Bridge {
	b := &Bridge{eng: e, sh: s, opts: opts, k: e.k, byID: make(map[string]*Member)}
	b.thr = opts.TalkThreshold
	if b.thr == 0 {
		b.thr = defaultTalkThreshold
	}
	h := opts.Hangover
	if h <= 0 {
		h = defaultHangover
	}
	b.hang = int((h + e.cfg.Ptime - 1) / e.cfg.Ptime)
	return b
}

// Add puts a new member in the bridge. Its HandleRTP takes the member's RTP;
// out receives what it hears.
func (b *Bridge) Add(id string, codec Codec, out Output) (*Member, error) {
	if id == "" || out == nil {
		return nil, fmt.Errorf("%w: empty id or nil output", ErrInvalidMember)
	}
	if codec.law() == nil {
		return nil, fmt.Errorf("%w: %v", ErrCodec, codec)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if _, ok := b.byID[id]; ok {
		return nil, fmt.Errorf("%w: %s", ErrMemberExists, id)
	}
	m := newMember(b, id, codec, out)
	b.members = append(b.members, m)
	b.byID[id] = m
	if b.opts.JoinTone {
		b.startTone(joinTone)
	}
	b.reconcile()
	if !b.registered {
		b.registered = true
		b.sh.add(b)
	}
	return m, nil
}

// Remove takes a member out and returns how many are left; 0 means the
// bridge is empty (the caller releases the conference). An unknown id
// changes nothing. After Remove returns, the member's Output is not used again.
func (b *Bridge) Remove(id string) (left int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.byID[id]
	if !ok {
		return len(b.members)
	}
	if b.hairpin {
		b.unlink()
	}
	delete(b.byID, id)
	for i, x := range b.members {
		if x == m {
			copy(b.members[i:], b.members[i+1:])
			b.members[len(b.members)-1] = nil
			b.members = b.members[:len(b.members)-1]
			break
		}
	}
	m.retire()
	if len(b.members) > 0 && b.opts.LeaveTone {
		b.startTone(leaveTone)
	}
	if len(b.members) == 0 {
		b.tone = nil
		if b.registered {
			b.registered = false
			b.sh.remove(b)
		}
	}
	b.reconcile()
	return len(b.members)
}

// retire stops all use of a member that left.
func (m *Member) retire() {
	m.closed.Store(true)
	m.peer.Store(nil)
	m.omu.Lock()
	m.out = discard{}
	m.omu.Unlock()
}

type discard struct{}

func (discard) Send([]byte) error { return nil }

func (b *Bridge) set(id string, f func(m *Member)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.byID[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMember, id)
	}
	f(m)
	b.reconcile()
	return nil
}

// SetMuted: a muted member hears the conference but is not heard.
func (b *Bridge) SetMuted(id string, on bool) error {
	return b.set(id, func(m *Member) { m.muted = on })
}

// SetReceiveOnly: a receive-only (monitor) member hears but is never heard.
func (b *Bridge) SetReceiveOnly(id string, on bool) error {
	return b.set(id, func(m *Member) { m.recvOnly = on })
}

// SetCoach: a coach is heard only by the pupils of the bridge; it hears
// everyone (except other coaches).
func (b *Bridge) SetCoach(id string, on bool) error {
	return b.set(id, func(m *Member) { m.coach = on })
}

// SetPupil: a pupil hears the conference and the coaches.
func (b *Bridge) SetPupil(id string, on bool) error {
	return b.set(id, func(m *Member) { m.pupil = on })
}

// Mixing reports whether the bridge's membership needs the mixer: false
// when it is empty or can be hairpinned (two members of one codec and no
// attributes, relayed directly, holding no conference resource). A join or
// leave tone mixes a hairpin for a moment without changing this answer, so
// resource accounting that re-checks it after Add, Remove and attribute
// changes stays exact.
func (b *Bridge) Mixing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.members) > 0 && !b.eligible(true)
}

// Len returns the number of members.
func (b *Bridge) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.members)
}

// Close removes every member and stops ticking the bridge. Idempotent.
func (b *Bridge) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.hairpin {
		b.unlink()
	}
	for _, m := range b.members {
		m.retire()
	}
	b.members = nil
	clear(b.byID)
	b.tone = nil
	if b.registered {
		b.registered = false
		b.sh.remove(b)
	}
}

// MemberStats describes one member.
type MemberStats struct {
	Codec      Codec
	Talking    bool
	Hairpinned bool
	Sent       uint64 // packets sent to the member
	SendErrors uint64
	Relayed    uint64 // packets of this member relayed directly (hairpin)
	Malformed  uint64
	WrongPT    uint64
	Oversize   uint64 // packets too large to mix (over 60 ms of G.711)
	Jitter     JitterStats
}

// MemberStats returns a snapshot of one member's counters.
func (b *Bridge) MemberStats(id string) (MemberStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.byID[id]
	if !ok {
		return MemberStats{}, fmt.Errorf("%w: %s", ErrUnknownMember, id)
	}
	s := MemberStats{
		Codec: m.codec, Talking: m.talking, Hairpinned: b.hairpin,
		Relayed: m.relayed.Load(), Malformed: m.malformed.Load(), WrongPT: m.wrongPT.Load(),
		Oversize: m.oversize.Load(),
	}
	m.jmu.Lock()
	s.Jitter = m.jb.stats()
	m.jmu.Unlock()
	m.omu.Lock()
	s.Sent, s.SendErrors = m.sent, m.sendErrs
	m.omu.Unlock()
	return s, nil
}

// eligible reports whether the bridge should be hairpinned. With
// ignoreTone, a playing tone does not count (Mixing reports the structure).
func (b *Bridge) eligible(ignoreTone bool) bool {
	if !b.opts.Hairpin || b.closed || len(b.members) != 2 {
		return false
	}
	x, y := b.members[0], b.members[1]
	if x.codec != y.codec || x.attrs() || y.attrs() {
		return false
	}
	// Tones, plays and sent digits mix for their duration only.
	return ignoreTone || (b.tone == nil && b.src == nil && b.mixTap == nil && !x.busy() && !y.busy())
}

func (m *Member) attrs() bool { return m.muted || m.recvOnly || m.coach || m.pupil }

// reconcile links or unlinks the hairpin to match the membership (mu held).
func (b *Bridge) reconcile() {
	want := b.eligible(false)
	if want == b.hairpin {
		return
	}
	if want {
		b.link()
	} else {
		b.unlink()
	}
}

// link turns the mixer into a direct relay. The peers are linked first, so
// new packets go straight across; what each jitter buffer still holds is
// then sent to the other member (same codec: no transcoding) while holding
// its output stream, so relayed packets queue behind it and the receiver
// sees one continuous stream.
func (b *Bridge) link() {
	x, y := b.members[0], b.members[1]
	x.peer.Store(y)
	y.peer.Store(x)
	b.hairpin = true
	now := b.eng.now()
	b.flushTo(x, y, now)
	b.flushTo(y, x, now)
}

func (b *Bridge) flushTo(src, dst *Member, now int64) {
	k := b.k
	src.jmu.Lock()
	defer src.jmu.Unlock()
	dst.omu.Lock()
	defer dst.omu.Unlock()
	for i := 0; src.jb.synced && i < jbSize/k; i++ {
		if int32(src.jb.hiTs-src.jb.playTs) <= 0 {
			break
		}
		kind := src.jb.play(src.frame[:k], src.law.silence)
		if kind == frameSilent && src.jb.preroll > 0 {
			continue // deliberate delay before the first packet: nothing to hear
		}
		copy(dst.obuf[rtpHeaderLen:], src.frame[:k])
		dst.emit(uint8(dst.codec), k, now)
	}
	src.jb.reset()
	src.talking, src.hang = false, 0
}

// unlink turns a hairpin back into a mixer. The jitter buffers start without
// pre-roll delay so the first mixed frame follows the last relayed one
// within a tick; the delay then grows only if the network needs it.
func (b *Bridge) unlink() {
	for _, m := range b.members {
		m.peer.Store(nil)
	}
	for _, m := range b.members {
		m.omu.Lock() // waits out a relay in flight
		m.hpSet = false
		m.omu.Unlock()
		m.jmu.Lock()
		m.jb.reset()
		m.jb.fast = true
		m.jmu.Unlock()
	}
	b.hairpin = false
}

// tick mixes one period and then reports talker changes. Called by the
// engine's shard goroutine.
func (b *Bridge) tick(now int64) {
	b.mu.Lock()
	b.mixLocked(now)
	changes := b.talkChangesLocked()
	ended := b.ended
	b.ended = b.ended[:0]
	b.mu.Unlock()
	b.reportTalk(changes)
	for i, f := range ended {
		f()
		ended[i] = nil
	}
}

// mixLocked mixes one period (mu held).
func (b *Bridge) mixLocked(now int64) {
	if b.closed || b.hairpin || len(b.members) == 0 {
		return
	}
	k := b.k
	sum, coachSum := b.sum[:k], b.coachSum[:k]
	nSum, nCoach := 0, 0
	for _, m := range b.members {
		kind := m.play(k)
		m.inMix = false
		if m.ops.tapped {
			m.tapLocked(kind, k)
		}
		if m.muted || m.recvOnly || kind == frameSilent {
			m.talking, m.hang = false, 0
			continue
		}
		if !b.detect(m) {
			continue
		}
		pcm := m.pcm[:k]
		m.law.decode(pcm, m.frame[:k])
		if kind == frameConcealed {
			fadeOut(pcm)
		}
		if m.coach {
			accumulate(coachSum, pcm, nCoach == 0)
			nCoach++
		} else {
			accumulate(sum, pcm, nSum == 0)
			nSum++
			m.inMix = true
		}
	}
	if b.tone != nil {
		nSum = b.addTone(sum, nSum)
	}
	if b.src != nil {
		nSum = b.addSource(sum, nSum)
	}
	if b.mixTap != nil {
		b.mixTapLocked(sum, nSum)
	}
	b.shared[0].valid, b.shared[1].valid = false, false
	for _, m := range b.members {
		m.omu.Lock()
		if m.emitEvent(now, &b.ended) {
			m.omu.Unlock()
			continue
		}
		p := m.obuf[rtpHeaderLen : rtpHeaderLen+k]
		switch {
		case m.ops.src != nil:
			mix := b.mix[:k]
			for i := range mix {
				var v int32
				if nSum > 0 {
					v = sum[i]
				}
				if m.inMix {
					v -= int32(m.pcm[i])
				}
				if m.pupil && nCoach > 0 {
					v += coachSum[i]
				}
				mix[i] = v
			}
			m.addSource(mix, &b.ended)
			m.law.encodeSat(p, mix)
		case m.pupil && nCoach > 0:
			mix := b.mix[:k]
			for i := range mix {
				v := coachSum[i]
				if nSum > 0 {
					v += sum[i]
				}
				if m.inMix {
					v -= int32(m.pcm[i])
				}
				mix[i] = v
			}
			m.law.encodeSat(p, mix)
		case m.inMix && nSum == 1: // only itself talks
			fill(p, m.law.silence)
		case m.inMix:
			mix := b.mix[:k]
			for i := range mix {
				mix[i] = sum[i] - int32(m.pcm[i])
			}
			m.law.encodeSat(p, mix)
		default:
			sh := &b.shared[lawIndex(m.codec)]
			if !sh.valid {
				if nSum == 0 {
					fill(sh.buf[:k], m.law.silence)
				} else {
					m.law.encodeSat(sh.buf[:k], sum)
				}
				sh.valid = true
			}
			copy(p, sh.buf[:k])
		}
		m.emit(uint8(m.codec), k, now)
		m.omu.Unlock()
	}
	if b.opts.Hairpin {
		b.reconcile() // a tone or play that just ended may let the hairpin return
	}
}

// detect updates the member's talker state from its frame's level, with
// hang-over (mu held).
func (b *Bridge) detect(m *Member) bool {
	if b.thr < 0 || m.law.meanAbs(m.frame[:b.k]) >= b.thr {
		m.hang = b.hang
		m.talking = true
		return true
	}
	if m.hang > 0 {
		m.hang--
		m.talking = true
		return true
	}
	m.talking = false
	return false
}

func accumulate(sum []int32, pcm []int16, first bool) {
	pcm = pcm[:len(sum)]
	if first {
		for i, v := range pcm {
			sum[i] = int32(v)
		}
		return
	}
	for i, v := range pcm {
		sum[i] += int32(v)
	}
}

// fadeOut ramps a concealment frame down to silence so a repeat does not click.
func fadeOut(pcm []int16) {
	n := int32(len(pcm))
	for i := range pcm {
		pcm[i] = int16(int32(pcm[i]) * (n - int32(i)) / n)
	}
}

func lawIndex(c Codec) int {
	if c == PCMA {
		return 1
	}
	return 0
}
