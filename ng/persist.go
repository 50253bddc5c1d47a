package ng

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// Persistence (issue 13, DESIGN §10): each call is written (kind
// "ng-call") whenever an offer, answer or delete changes it, and removed
// with its last dialog. Restore, before Serve, rebuilds the calls around
// the connections the table restored, so the proxy's next answer, re-offer,
// query or delete after a restart finds its call; a dialog that lost a
// connection (port taken) is released whole, a pending delayed delete runs
// when it was due, and ng connections no call claims are released.

// State is where the front keeps its calls (session.State).
type State = session.State

// StateCall is the kind of the persisted calls.
const StateCall = "ng-call"

const callVersion = 1

type callRecord struct {
	V       int            `json:"v"`
	ID      string         `json:"id"`
	Created time.Time      `json:"created"`
	Dialogs []dialogRecord `json:"dialogs"`
}

type dialogRecord struct {
	From     string         `json:"from"`
	To       string         `json:"to,omitempty"`
	Branch   string         `json:"branch,omitempty"`
	Created  time.Time      `json:"created"`
	DeleteAt time.Time      `json:"delete_at,omitzero"` // a delayed delete pending
	Streams  []streamRecord `json:"streams"`
}

type streamRecord struct {
	Index  int          `json:"index"`
	Kind   string       `json:"kind"`
	Proto  string       `json:"proto"`
	A      string       `json:"a"`
	B      string       `json:"b"`
	ALocal string       `json:"a_local"`
	BLocal string       `json:"b_local"`
	AAdv   string       `json:"a_adv,omitempty"`
	BAdv   string       `json:"b_adv,omitempty"`
	AMode  session.Mode `json:"a_mode"`
	BMode  session.Mode `json:"b_mode"`
}

func apString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

// saveCallLocked queues c's record, or its removal once it has no dialog
// left. Caller holds mu.
func (s *Server) saveCallLocked(c *call) {
	if s.state == nil || c == nil {
		return
	}
	if len(c.dialogs) == 0 || s.calls[c.id] != c {
		s.state.Delete(StateCall, c.id)
		return
	}
	r := callRecord{V: callVersion, ID: c.id, Created: c.created}
	for _, d := range c.dialogs {
		dr := dialogRecord{From: d.fromTag, To: d.toTag, Branch: d.branch, Created: d.created, DeleteAt: d.deleteDue}
		for _, st := range d.streams {
			if st == nil {
				continue
			}
			dr.Streams = append(dr.Streams, streamRecord{Index: st.index, Kind: st.kind, Proto: st.proto, A: st.a, B: st.b,
				ALocal: apString(st.aLocal), BLocal: apString(st.bLocal), AAdv: apString(st.aAdv), BAdv: apString(st.bAdv),
				AMode: st.aMode, BMode: st.bMode})
		}
		r.Dialogs = append(r.Dialogs, dr)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	s.state.Put(StateCall, c.id, b)
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Calls    int // calls restored (with at least one dialog)
	Lost     int // dialogs released because a connection did not come back
	Released int // ng connections of the table no call claimed
}

// Restore rebuilds the calls kept in st around the connections the table
// restored, releases what it cannot rebuild, and keeps st for later
// changes. Call it once, after the table's Restore and before Serve. It
// fails only when st cannot be read or holds a layout this build does not
// know.
func (s *Server) Restore(st State) (RestoreReport, error) {
	var rep RestoreReport
	var recs []callRecord
	var bad []string
	err := st.ForEach(StateCall, func(id string, v []byte) error {
		var r callRecord
		if err := json.Unmarshal(v, &r); err != nil || r.ID != id {
			bad = append(bad, id)
			return nil
		}
		if r.V != callVersion {
			return fmt.Errorf("ng: state of call %s has layout %d; this gateway reads %d", id, r.V, callVersion)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	for _, id := range bad {
		st.Delete(StateCall, id)
	}
	owned := map[string]bool{}
	for _, r := range recs {
		c := &call{id: r.ID, created: r.Created, lastSignal: time.Now()}
		for _, dr := range r.Dialogs {
			d, ok := s.restoreDialog(dr)
			if !ok {
				rep.Lost++
				continue
			}
			c.dialogs = append(c.dialogs, d)
		}
		if len(c.dialogs) == 0 {
			st.Delete(StateCall, r.ID)
			continue
		}
		s.calls[c.id] = c
		s.nCalls.Add(1)
		for _, d := range c.dialogs {
			for _, x := range d.streams {
				if x != nil {
					s.byConn[x.a], s.byConn[x.b] = connRef{c, d}, connRef{c, d}
					owned[x.a], owned[x.b] = true, true
				}
			}
			if !d.deleteDue.IsZero() {
				s.armDelete(c, d, time.Until(d.deleteDue))
			}
		}
		s.saveCallLocked(c)
		rep.Calls++
	}
	for _, cn := range s.table.Connections() {
		if cn.Owner != session.FrontNG || owned[cn.ID] {
			continue
		}
		if _, err := s.table.DeleteConnection(cn.ID, "", session.Release{By: session.FrontNG, Reason: "no ng call kept"}); err == nil {
			rep.Released++
		}
	}
	return rep, nil
}

// restoreDialog rebuilds one dialog, or releases what is left of it when a
// connection did not come back. Caller holds mu.
func (s *Server) restoreDialog(dr dialogRecord) (*dialog, bool) {
	d := &dialog{fromTag: dr.From, toTag: dr.To, branch: dr.Branch, created: dr.Created, deleteDue: dr.DeleteAt}
	whole := true
	var ids []string
	for _, sr := range dr.Streams {
		st := &stream{index: sr.Index, kind: sr.Kind, proto: sr.Proto, a: sr.A, b: sr.B, aMode: sr.AMode, bMode: sr.BMode}
		st.aLocal, _ = netip.ParseAddrPort(sr.ALocal)
		st.bLocal, _ = netip.ParseAddrPort(sr.BLocal)
		st.aAdv, _ = netip.ParseAddrPort(sr.AAdv)
		st.bAdv, _ = netip.ParseAddrPort(sr.BAdv)
		for _, id := range []string{sr.A, sr.B} {
			ids = append(ids, id)
			if c, err := s.table.Connection(id); err != nil || c.Owner != session.FrontNG {
				whole = false
			}
		}
		if sr.Index < 1 || sr.Index > 64 {
			whole = false
			continue
		}
		for len(d.streams) < sr.Index {
			d.streams = append(d.streams, nil)
		}
		d.streams[sr.Index-1] = st
	}
	if whole && len(ids) > 0 {
		return d, true
	}
	s.log.WithFields(logrus.Fields{"from_tag": dr.From, "to_tag": dr.To}).Warn("ng dialog not restored: a connection did not come back")
	for _, id := range ids {
		_, _ = s.table.DeleteConnection(id, "", session.Release{By: session.FrontNG, Reason: "ng dialog not restored"})
	}
	return nil, false
}
