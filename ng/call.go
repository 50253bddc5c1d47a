package ng

import (
	"net/netip"
	"time"

	"github.com/mediagw/mediagw/session"
)

// call is one Call-ID's state. All calls are guarded by Server.mu.
type call struct {
	id         string
	created    time.Time
	lastSignal time.Time
	dialogs    []*dialog
}

// dialog is one offerer/answerer pair of monologues: the offer's from-tag,
// the answer's to-tag (empty until answered) and the via-branch of a
// forked offer. Each relayed m= section is a stream.
type dialog struct {
	fromTag, toTag, branch string
	created                time.Time
	streams                []*stream
	deleteAt               *time.Timer // a pending delayed delete
	deleteDue              time.Time   // when it runs (kept in the state)
}

// stream is one relayed m= section: two connections bridged in the session
// table, a facing the offerer (from-tag), b facing the answerer.
type stream struct {
	index      int // m= position, from 1
	kind       string
	proto      string
	a, b       string         // connection IDs
	aLocal     netip.AddrPort // our address a's endpoint sends to
	bLocal     netip.AddrPort
	aAdv, bAdv netip.AddrPort // the endpoints as their SDP advertised them
	aMode      session.Mode
	bMode      session.Mode
}

// side says which end of a dialog a tag is.
type side int

const (
	sideNone side = iota
	sideA         // the offerer of the first offer (from-tag)
	sideB         // the answerer (to-tag)
)

// facing returns the connection of s facing side x and the other one.
func (s *stream) facing(x side) (self, other string) {
	if x == sideA {
		return s.a, s.b
	}
	return s.b, s.a
}

// findDialog finds the dialog a command with these tags belongs to and
// which side the command's from-tag is. With a to-tag the pair must match
// (either way round); without one, the from-tag's unanswered (or only)
// dialog on the same via-branch.
func (c *call) findDialog(from, to, branch string) (*dialog, side) {
	if to != "" {
		for _, d := range c.dialogs {
			if d.fromTag == from && d.toTag == to {
				return d, sideA
			}
			if d.fromTag == to && d.toTag == from {
				return d, sideB
			}
		}
		// Answered nowhere yet: the offer this answer (or re-offer) follows.
		for _, d := range c.dialogs {
			if d.fromTag == from && d.toTag == "" && (branch == "" || d.branch == branch) {
				return d, sideA
			}
		}
		return nil, sideNone
	}
	for _, d := range c.dialogs {
		if d.fromTag == from && d.branch == branch {
			return d, sideA
		}
	}
	if branch != "" {
		return nil, sideNone // a new fork
	}
	for _, d := range c.dialogs {
		if d.fromTag == from {
			return d, sideA
		}
		if d.toTag == from {
			return d, sideB
		}
	}
	return nil, sideNone
}

// matching lists the dialogs a delete or query with these tags addresses:
// all of them without a from-tag; else those with the tag on either side,
// narrowed by the to-tag and via-branch when given.
func (c *call) matching(from, to, branch string) []*dialog {
	var out []*dialog
	for _, d := range c.dialogs {
		switch {
		case from == "":
		case d.fromTag == from && (to == "" || d.toTag == to || d.toTag == ""):
			// An unanswered dialog matches any to-tag: a proxy deletes a
			// call its callee refused (486) with that reply's to-tag.
		case d.toTag == from && (to == "" || d.fromTag == to):
		default:
			continue
		}
		if branch != "" && d.branch != branch {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (c *call) remove(d *dialog) {
	for i, x := range c.dialogs {
		if x == d {
			c.dialogs = append(c.dialogs[:i], c.dialogs[i+1:]...)
			return
		}
	}
}

// tagOf names side x of d.
func (d *dialog) tagOf(x side) string {
	if x == sideA {
		return d.fromTag
	}
	return d.toTag
}
