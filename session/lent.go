package session

import (
	"fmt"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
)

// A lent mixer gives a target that has no mixer of its own (a connection
// alone, or the legs of a two-party relay bridge) a private confbridge
// mixer for as long as operations that need one run on it: Play, PlayTone,
// SendDigits, Record, and GatherDigits on a leg that did not negotiate
// telephone-events (in-band detection). While it is lent the legs' packets
// go to the mixer instead of the relay, so the two parties of a bridge
// still hear each other (decoded and mixed, with the mixer's jitter
// buffer); when its last operation ends the legs go back to the relay.
// RFC 4733 events are still reported by the legs, but not relayed from one
// party to the other while the mixer is lent.
//
// Any change of the target's structure (a leg joins or leaves a
// conference, changes codec, is looped back or released) takes the mixer
// back: output and record operations end with autostop, a gather goes on
// without in-band detection until it can borrow again.
type lent struct {
	mixer   *confbridge.Bridge
	conns   []*conn
	bridge  *conf // the relay bridge whose legs these are, nil for a lone leg
	users   map[*operation]struct{}
	members map[string]*confbridge.Member
}

// borrowLocked lends c (and its relay partner) a mixer, or returns the one
// already lent, and records op as its user. Caller holds mu.
func (t *Table) borrowLocked(c *conn, op *operation) (*lent, error) {
	if c.lent == nil {
		l, err := t.lendLocked(c)
		if err != nil {
			return nil, err
		}
		for _, x := range l.conns {
			x.lent = l
		}
	}
	c.lent.users[op] = struct{}{}
	op.lent = c.lent
	return c.lent, nil
}

func (t *Table) lendLocked(c *conn) (*lent, error) {
	if c.Mode == ModeLoopback {
		return nil, fmt.Errorf("%w: connection %s is in loopback mode", ErrInvalidParam, c.ID)
	}
	l := &lent{conns: []*conn{c}, users: map[*operation]struct{}{}, members: map[string]*confbridge.Member{}}
	if cf := c.conf; cf != nil {
		l.bridge, l.conns = cf, l.conns[:0]
		for _, mb := range cf.members {
			l.conns = append(l.conns, mb.c)
		}
	}
	codecs := make([]confbridge.Codec, len(l.conns))
	for i, x := range l.conns {
		cc, ok := confbridge.ParseCodec(x.Codec)
		if !ok {
			return nil, fmt.Errorf("%w: connection %s uses %s, which the mixer that media operations play through cannot decode", ErrInvalidParam, x.ID, x.Codec)
		}
		codecs[i] = cc
	}
	l.mixer = t.mixers.NewBridge(confbridge.Options{TalkThreshold: t.cfg.Conference.talkLevel()})
	for i, x := range l.conns {
		m, err := l.mixer.Add(x.ID, codecs[i], x.leg)
		if err != nil {
			l.mixer.Close()
			t.restoreLegsLocked(l)
			return nil, fmt.Errorf("%w: %v", ErrInternal, err)
		}
		if x.TelephoneEvent != 0 {
			m.SetEventPayloadType(x.TelephoneEvent) // the leg reports them; the mixer must not decode them
		}
		l.members[x.ID] = m
		if !t.legListens(x) { // else the leg hears its own digits already
			t.listenInband(l.mixer, x, l.confID())
		}
		x.leg.SetHandler(m)
	}
	return l, nil
}

// giveBackLocked ends op's use of its lent mixer; the last user returns
// it. Caller holds mu.
func (t *Table) giveBackLocked(op *operation) {
	l := op.lent
	if l == nil {
		return
	}
	op.lent = nil
	delete(l.users, op)
	if len(l.users) == 0 {
		t.reclaimLocked(l)
	}
}

// reclaimLocked takes a lent mixer back: users that cannot go on without
// it end with autostop (into the pending list), gathers go on without it.
// Caller holds mu.
func (t *Table) reclaimLocked(l *lent) {
	for op := range l.users {
		op.lent = nil
		if op.action != "GatherDigits" && t.ops.ops[op.id] == op {
			t.ops.pending = append(t.ops.pending, t.finishLocked(op, TermAutoStop))
		}
	}
	clear(l.users)
	for _, x := range l.conns {
		if x.lent == l {
			x.lent = nil
		}
	}
	l.mixer.Close()
	t.restoreLegsLocked(l)
}

func (l *lent) confID() string {
	if l.bridge != nil {
		return l.bridge.id
	}
	return ""
}

// restoreLegsLocked sends the legs' packets where they went before the
// mixer was lent: to the relay partner, or nowhere. Caller holds mu.
func (t *Table) restoreLegsLocked(l *lent) {
	for _, x := range l.conns {
		x.leg.SetHandler(nil)
	}
	if cf := l.bridge; cf != nil && len(cf.members) == 2 && cf.members[0].c.conf == cf && cf.members[1].c.conf == cf {
		rtpproxy.Relay(cf.members[0].c.leg, cf.members[1].c.leg)
	}
	for _, x := range l.conns {
		if x.conf == nil || x.conf.kind == KindBridge {
			t.applyMedia(x)
		}
	}
}

// reclaimConnLocked takes back the mixer lent to c (its structure is about
// to change). Caller holds mu.
func (t *Table) reclaimConnLocked(c *conn) {
	if c.lent != nil {
		t.reclaimLocked(c.lent)
	}
}

// listenLocked lets c's running gather hear in-band DTMF again after its
// structure changed: a leg without telephone-events outside a mixed
// conference borrows a mixer. Caller holds mu.
func (t *Table) listenLocked(c *conn) {
	op := t.ops.gathers[c.ID]
	if op == nil || op.lent != nil || c.TelephoneEvent != 0 || (c.conf != nil && c.conf.mixer != nil) || t.legListens(c) {
		return
	}
	if _, err := t.borrowLocked(c, op); err != nil {
		t.log.WithError(err).WithField("conn_id", c.ID).Debug("gather without in-band detection")
	}
}

// mixerForLocked is the mixer an operation on c plays or listens
// through, and the conference (or relay bridge) it belongs to: c's
// conference mixer, or one lent for op. Caller holds mu.
func (t *Table) mixerForLocked(c *conn, op *operation) (*confbridge.Bridge, string, error) {
	confID := ""
	if c.conf != nil {
		confID = c.conf.id
		if c.conf.mixer != nil {
			return c.conf.mixer, confID, nil
		}
	}
	l, err := t.borrowLocked(c, op)
	if err != nil {
		return nil, "", err
	}
	return l.mixer, confID, nil
}
