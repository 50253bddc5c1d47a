package session

import (
	"fmt"
	"sync"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
)

// ReceiveDigit announces a digit that reached connection id by signalling
// (SIP INFO) rather than in its media: a DigitReceived at its start and one
// at its end, like an RFC 4733 event heard by a conference's mixer. digit
// is the RFC 4733 event code (0-9, 10 '*', 11 '#', 12-15 A-D).
func (t *Table) ReceiveDigit(id string, digit byte) error {
	if digit > 15 {
		return fmt.Errorf("%w: digit event %d", ErrInvalidParam, digit)
	}
	c, err := t.Connection(id)
	if err != nil {
		return err
	}
	t.met.digits.WithLabelValues("info").Inc()
	ev := Event{Type: DigitReceived, Connection: Connection{ID: c.ID, ConferenceID: c.ConferenceID},
		ConferenceID: c.ConferenceID, Digit: digit}
	t.announce(ev)
	ev.DigitEnd = true
	t.announce(ev)
	t.digitArrived(c.ID, digit) // after its DigitReceived: a gather it completes is announced later
	return nil
}

// legDigit is a telephone-event a connection's leg heard (runs on its RTP
// reader: no table lock).
func (t *Table) legDigit(id, confID string, event byte, end bool) {
	t.announce(Event{Type: DigitReceived, Connection: Connection{ID: id, ConferenceID: confID},
		ConferenceID: confID, Digit: event, DigitEnd: end})
	if !end && event <= 15 { // after its DigitReceived, as the mixer's digits
		t.met.digits.WithLabelValues("rfc4733").Inc()
		t.digitArrived(id, event)
	}
}

// DigitCode is the RFC 4733 event code of a DTMF key ('0'-'9', '*', '#',
// 'A'-'D', either case); ok false for anything else.
func DigitCode(key byte) (code byte, ok bool) {
	switch {
	case key >= '0' && key <= '9':
		return key - '0', true
	case key == '*':
		return 10, true
	case key == '#':
		return 11, true
	case key >= 'A' && key <= 'D':
		return key - 'A' + 12, true
	case key >= 'a' && key <= 'd':
		return key - 'a' + 12, true
	}
	return 0, false
}

// applyInband listens for in-band DTMF on a mixed member whose remote did
// not negotiate telephone-events: the mixer hands the detector each frame
// it decodes, or each packet it relays while a two-party conference is
// hairpinned. Caller holds mu.
func (t *Table) applyInband(cf *conf, c *conn) { t.listenInband(cf.mixer, c, cf.id) }

// listenInband sets or clears c's in-band detector on mixer (its
// conference's, or one lent to it). Caller holds mu.
func (t *Table) listenInband(mixer *confbridge.Bridge, c *conn, confID string) {
	if c.TelephoneEvent != 0 {
		if err := mixer.SetTap(c.ID, confbridge.TapDetect, nil); err != nil {
			t.log.WithError(err).WithField("conn_id", c.ID).Warn("clear in-band DTMF tap")
		}
		return
	}
	det := audio.NewDTMFDetector(t.inbandDigit(c.ID, confID))
	var mu sync.Mutex // the mixer's tick and, while hairpinned, the leg's reader
	process := func(pcm []int16) {
		mu.Lock()
		det.Process(pcm)
		mu.Unlock()
	}
	if err := mixer.SetTap(c.ID, confbridge.TapDetect, process); err != nil {
		t.log.WithError(err).WithField("conn_id", c.ID).Warn("set in-band DTMF tap")
	}
}

// inbandDigit announces a key an in-band detector heard on connection id,
// start and end at once (the detector reports a key once).
func (t *Table) inbandDigit(id, confID string) func(code byte) {
	return func(code byte) {
		t.announce(Event{Type: DigitReceived, Connection: Connection{ID: id, ConferenceID: confID}, ConferenceID: confID, Digit: code})
		t.announce(Event{Type: DigitReceived, Connection: Connection{ID: id, ConferenceID: confID}, ConferenceID: confID, Digit: code, DigitEnd: true})
		t.met.digits.WithLabelValues("inband").Inc()
		t.digitArrived(id, code)
	}
}

// legListens reports whether c's own packets are searched for in-band
// DTMF (media.inband_dtmf always): a G.711 leg without telephone-events
// outside a mixed conference. Caller holds mu.
func (t *Table) legListens(c *conn) bool {
	if t.cfg.Media.InbandDTMF == InbandGather || c.TelephoneEvent != 0 || c.Mode == ModeLoopback {
		return false
	}
	if c.conf != nil && c.conf.kind == KindConference {
		return false
	}
	_, ok := confbridge.ParseCodec(c.Codec)
	return ok
}

// applyLegInband sets or clears the in-band detector on c's leg. The
// detector and its buffer belong to the leg's reader from then on.
// Caller holds mu.
func (t *Table) applyLegInband(c *conn) {
	if !t.legListens(c) {
		if c.inband != "" {
			c.leg.SetAudioTap(0, nil)
			c.inband = ""
		}
		return
	}
	confID := ""
	if c.conf != nil {
		confID = c.conf.id
	}
	if key := c.Codec + "/" + confID; key != c.inband { // a modify that changes nothing keeps the detector
		pt, fn := legDetector(c.Codec, t.inbandDigit(c.ID, confID))
		c.leg.SetAudioTap(pt, fn)
		c.inband = key
	}
}

// legDetector is a leg's in-band detector: its payload type and the tap
// that decodes each packet's G.711 payload into the detector.
func legDetector(codec string, onDigit func(code byte)) (uint8, rtpproxy.AudioFunc) {
	det := audio.NewDTMFDetector(onDigit)
	decode, pt := audio.DecodeUlaw, uint8(0)
	if codec == "PCMA" {
		decode, pt = audio.DecodeAlaw, 8
	}
	var pcm [480]int16
	return pt, func(payload []byte) {
		for len(payload) > 0 {
			n := min(len(payload), len(pcm))
			decode(pcm[:n], payload[:n])
			det.Process(pcm[:n])
			payload = payload[n:]
		}
	}
}
