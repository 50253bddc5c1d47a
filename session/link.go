package session

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/mediagw/mediagw/confbridge"
)

// Conference links: two mixed conferences joined so that each side hears
// the other's members (SIP REFER from a conference leg to another of our
// conferences, RFC 4579 §5.5). A link is a pair of mixer members, one in
// each conference, wired crosswise: what one hears (its conference's mix
// without it) is what the other says in its own. Nobody hears itself, and
// a link holds no RTP port, no connection and no conference resource. It
// goes when either conference is released (its last real member left),
// through the same DeleteConnection path. Links never form a cycle (a
// member would hear itself around it): such a link is refused.

// ErrLinked: the two conferences are linked already (directly or not).
var ErrLinked = &Error{CodeInvalidValue, "the conferences are linked already"}

// link is one pair of link members. Guarded by Table.mu.
type link struct {
	a, b   *conf
	ma, mb string // the members' IDs in a's and b's mixers
}

// linkOut feeds what one link member hears into the other as what it says.
type linkOut struct {
	to atomic.Pointer[confbridge.Member]
}

func (o *linkOut) Send(pkt []byte) error {
	if m := o.to.Load(); m != nil {
		m.HandleRTP(pkt)
	}
	return nil
}

// LinkConferences links mixed conferences a and b.
func (t *Table) LinkConferences(a, b string) error {
	if a == b {
		return fmt.Errorf("%w: a conference cannot be linked to itself", ErrInvalidParam)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.linkLocked(a, b)
}

// linkLocked is LinkConferences. Caller holds mu.
func (t *Table) linkLocked(a, b string) error {
	ca, ok := t.confs[a]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConference, a)
	}
	cb, ok := t.confs[b]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConference, b)
	}
	if ca.mixer == nil || cb.mixer == nil {
		return fmt.Errorf("%w: only mixed conferences are linked, not relay bridges", ErrInvalidParam)
	}
	if t.reachableLocked(ca, cb) {
		return fmt.Errorf("%w: %s and %s", ErrLinked, a, b)
	}
	l := &link{a: ca, b: cb, ma: "link:" + b, mb: "link:" + a}
	var outA, outB linkOut
	mA, err := ca.mixer.Add(l.ma, confbridge.PCMU, &outA)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	mB, err := cb.mixer.Add(l.mb, confbridge.PCMU, &outB)
	if err != nil {
		ca.mixer.Remove(l.ma)
		return fmt.Errorf("%w: %v", ErrInternal, err)
	}
	outA.to.Store(mB) // what a's link member hears, b's says
	outB.to.Store(mA)
	ca.links = append(ca.links, l)
	cb.links = append(cb.links, l)
	if err := errors.Join(t.rebalance(ca), t.rebalance(cb)); err != nil { // a hairpin may turn into a mix
		t.unlinkLocked(l)
		return err
	}
	t.saveConfLocked(ca)
	t.saveConfLocked(cb)
	return nil
}

// reachableLocked reports whether b can be reached from a through links.
func (t *Table) reachableLocked(a, b *conf) bool {
	seen := map[*conf]bool{a: true}
	next := []*conf{a}
	for len(next) > 0 {
		cf := next[len(next)-1]
		next = next[:len(next)-1]
		for _, l := range cf.links {
			o := l.other(cf)
			if o == b {
				return true
			}
			if !seen[o] {
				seen[o] = true
				next = append(next, o)
			}
		}
	}
	return false
}

func (l *link) other(cf *conf) *conf {
	if l.a == cf {
		return l.b
	}
	return l.a
}

// unlinkLocked removes l from both mixers. Caller holds mu.
func (t *Table) unlinkLocked(l *link) {
	for _, side := range []struct {
		cf *conf
		id string
	}{{l.a, l.ma}, {l.b, l.mb}} {
		side.cf.mixer.Remove(side.id)
		for i, x := range side.cf.links {
			if x == l {
				side.cf.links = append(side.cf.links[:i], side.cf.links[i+1:]...)
				break
			}
		}
		if err := t.rebalance(side.cf); err != nil { // shrinking never needs more
			t.log.WithError(err).Error("rebalance on unlink")
		}
		t.saveConfLocked(side.cf) // a side being released is forgotten right after
	}
}

// unlinkAllLocked drops every link of a conference being released.
func (t *Table) unlinkAllLocked(cf *conf) {
	for len(cf.links) > 0 {
		t.unlinkLocked(cf.links[len(cf.links)-1])
	}
}

// linkedTo lists the conferences cf is linked to. Caller holds mu.
func (cf *conf) linkedTo() []string {
	var out []string
	for _, l := range cf.links {
		out = append(out, l.other(cf).id)
	}
	return out
}
