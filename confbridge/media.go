package confbridge

import (
	"fmt"
	"time"
)

// Media operations on a member: a Source mixed into what it hears, a Tap
// on what it says, and RFC 4733 telephone-events sent in its stream. They
// run on the mixer's tick. A Source or events mix a hairpinned pair for
// their duration (like a tone: Mixing() does not count them, so resources
// held do not change); a Tap does not, and hears nothing while the pair is
// hairpinned.

// Source is audio played into a member's ear: Read fills one frame of
// 8 kHz linear samples and says whether there is more after it. It is
// called on the mixer's goroutine under the bridge's lock: it must not
// block or allocate (decode prompts before you play them).
type Source interface {
	Read(pcm []int16) (more bool)
}

// Tap slots: a member has one tap of each kind.
const (
	TapDetect = iota // digit detection
	TapRecord        // a recording
	TapLevel         // silence / non-silence detection
	numTaps
)

// mediaOps are a member's running operations (under b.mu).
type mediaOps struct {
	src     Source
	srcDone func() // called after the tick that read the source's last frame
	tap     [numTaps]func(pcm []int16)
	tapped  bool // any tap set
	ev      eventSender
}

// eventSender sends RFC 4733 events (keys) in the member's stream: each
// key for eventTicks ticks with the duration growing, its end packet three
// times, then gapTicks of audio before the next.
type eventSender struct {
	codes []byte
	pt    uint8
	on    int   // ticks of each key
	pause int   // ticks between keys
	vol   uint8 // RFC 4733 volume: -dBm0
	done  func()
	i     int    // key being sent
	tick  int    // ticks of it sent so far (0: not started)
	ends  int    // end packets sent
	gap   int    // audio ticks left before the next key
	ts    uint32 // the key's timestamp
}

const (
	eventTicks = 5 // 100 ms of key at 20 ms
	eventEnds  = 3 // RFC 4733 §2.5.1.4
	eventGap   = 3 // 60 ms between keys
	eventVol   = 10
)

func (m *Member) busy() bool { return m.ops.src != nil || m.ops.ev.codes != nil }

// Play mixes src into what member id hears until src ends (then done runs,
// outside the lock, once) or StopPlay. A playing source is replaced.
func (b *Bridge) Play(id string, src Source, done func()) error {
	return b.set(id, func(m *Member) {
		m.ops.src, m.ops.srcDone = src, done
	})
}

// StopPlay ends member id's source without calling its done.
func (b *Bridge) StopPlay(id string) error {
	return b.set(id, func(m *Member) { m.ops.src, m.ops.srcDone = nil, nil })
}

// SetTap hands fn every tick's frame of what member id sends, decoded
// (silence when it sent nothing), on the mixer goroutine under the lock:
// fn must not block or allocate. nil removes the tap. A TapDetect also
// hears what the member sends while its bridge is hairpinned, packet by
// packet on the member's HandleRTP goroutine: around a change between the
// two it may be called from both at once, so it must do its own locking.
func (b *Bridge) SetTap(id string, slot int, fn func(pcm []int16)) error {
	if slot < 0 || slot >= numTaps {
		return fmt.Errorf("%w: tap slot %d", ErrInvalidMember, slot)
	}
	return b.set(id, func(m *Member) {
		m.ops.tap[slot] = fn
		m.ops.tapped = false
		for _, f := range m.ops.tap {
			m.ops.tapped = m.ops.tapped || f != nil
		}
		if slot == TapDetect {
			if fn == nil {
				m.hpTap.Store(nil)
			} else {
				m.hpTap.Store(&fn)
			}
		}
	})
}

// SetMixTap hands fn every tick's full mix (everyone who talks, and what
// is played to the conference), on the mixer goroutine under the lock: fn
// must not block or allocate. nil removes it. A hairpinned pair is not
// mixed, so a mix tap mixes it (like a play) while it is set.
func (b *Bridge) SetMixTap(fn func(pcm []int16)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.mixTap = fn
	b.reconcile()
	return nil
}

// mixTapLocked hands the tick's mix to the mix tap (mu held).
func (b *Bridge) mixTapLocked(sum []int32, nSum int) {
	out := b.mixTapBuf[:len(sum)]
	if nSum == 0 {
		clear(out)
	} else {
		for i, v := range sum {
			out[i] = int16(max(-32768, min(32767, v)))
		}
	}
	b.mixTap(out)
}

// SendEvents sends codes (RFC 4733 event codes) as telephone-events of
// payload type pt in member id's stream; done runs after the last end
// packet. Events being sent are replaced.
func (b *Bridge) SendEvents(id string, codes []byte, pt uint8, done func()) error {
	return b.SendEventsTimed(id, codes, EventTiming{PT: pt}, done)
}

// EventTiming shapes telephone-events: each key lasts On, keys are Pause
// apart (both rounded to ticks, at least one; zero = 100 ms and 60 ms),
// at Volume dBm0 below the overload point (RFC 4733 volume; zero = 10).
type EventTiming struct {
	PT        uint8
	On, Pause time.Duration
	Volume    uint8
}

// SendEventsTimed is SendEvents with the keys' duration, pause and volume.
func (b *Bridge) SendEventsTimed(id string, codes []byte, et EventTiming, done func()) error {
	if len(codes) == 0 {
		return nil
	}
	ticks := func(d time.Duration, def int) int {
		if d <= 0 {
			return def
		}
		return max(1, int((d+b.eng.cfg.Ptime/2)/b.eng.cfg.Ptime))
	}
	vol := et.Volume
	if vol == 0 {
		vol = eventVol
	}
	ev := eventSender{codes: append([]byte(nil), codes...), pt: et.PT & 0x7f, done: done,
		on: ticks(et.On, eventTicks), pause: ticks(et.Pause, eventGap), vol: min(vol, 63)}
	return b.set(id, func(m *Member) { m.ops.ev = ev })
}

// StopEvents ends member id's events without calling done (a key in
// progress is ended first, so the receiver does not hear it forever).
func (b *Bridge) StopEvents(id string) error {
	return b.set(id, func(m *Member) {
		if e := &m.ops.ev; e.codes != nil && e.tick > 0 && e.ends == 0 {
			e.codes, e.i, e.done = e.codes[e.i:e.i+1], 0, nil // finish this key's end packets
			e.tick = e.on
			return
		}
		m.ops.ev = eventSender{}
	})
}

// tapLocked feeds the member's tap (mu held): the frame decoded whatever
// the mix did with it.
func (m *Member) tapLocked(kind frameKind, k int) {
	pcm := m.tapBuf[:k]
	if kind == frameSilent {
		clear(pcm)
	} else {
		m.law.decode(pcm, m.frame[:k])
	}
	for _, f := range m.ops.tap {
		if f != nil {
			f(pcm)
		}
	}
}

// addSource adds the member's source to mix (mu held) and reports a source
// that just ended through ended.
func (m *Member) addSource(mix []int32, ended *[]func()) {
	src := m.ops.src
	buf := m.srcBuf[:len(mix)]
	more := src.Read(buf)
	for i, v := range buf {
		mix[i] += int32(v)
	}
	if !more {
		if m.ops.srcDone != nil {
			*ended = append(*ended, m.ops.srcDone)
		}
		m.ops.src, m.ops.srcDone = nil, nil
	}
}

// emitEvent sends this tick's telephone-event packet instead of audio, if
// one is due (omu held). It reports whether it sent.
func (m *Member) emitEvent(now int64, ended *[]func()) bool {
	e := &m.ops.ev
	if e.codes == nil {
		return false
	}
	if e.gap > 0 {
		e.gap--
		return false
	}
	k := m.k
	if e.tick == 0 {
		e.ts = m.nextTs(now)
		m.mark = true
	}
	end := e.tick >= e.on
	if !end {
		e.tick++
	}
	dur := e.tick * k
	p := m.obuf[rtpHeaderLen:]
	p[0] = e.codes[e.i]
	p[1] = e.vol
	if end {
		p[1] |= 0x80
		e.ends++
	}
	p[2], p[3] = byte(dur>>8), byte(dur)
	putRTPHeader(m.obuf[:], e.pt, m.mark, m.seq, e.ts, m.ssrc)
	m.mark = false
	m.seq++
	// The audio after the key continues the timeline past its duration.
	m.lastTs, m.lastN, m.lastSend, m.started = e.ts, dur, now, true
	m.hpSet = false
	m.send(rtpHeaderLen + 4)
	if e.ends >= eventEnds {
		e.i++
		e.tick, e.ends, e.gap = 0, 0, e.pause
		if e.i >= len(e.codes) {
			if e.done != nil {
				*ended = append(*ended, e.done)
			}
			*e = eventSender{}
		}
	}
	return true
}

// PlayAll mixes src into what every member hears (a hairpinned bridge mixes
// while it plays) until it ends (then done runs once, outside the lock) or
// StopPlayAll. A playing source is replaced.
func (b *Bridge) PlayAll(src Source, done func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.src, b.srcDone = src, done
	b.reconcile()
	return nil
}

// StopPlayAll ends the conference's source without calling its done.
func (b *Bridge) StopPlayAll() {
	b.mu.Lock()
	b.src, b.srcDone = nil, nil
	b.mu.Unlock()
}

// addSource adds this tick's frame of the conference source to the sum
// (mu held) and returns the new number of contributors.
func (b *Bridge) addSource(sum []int32, nSum int) int {
	buf := b.srcBuf[:len(sum)]
	more := b.src.Read(buf)
	accumulate(sum, buf, nSum == 0)
	if !more {
		if b.srcDone != nil {
			b.ended = append(b.ended, b.srcDone)
		}
		b.src, b.srcDone = nil, nil
	}
	return nSum + 1
}
