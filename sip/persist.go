package sip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/internal/jsonw"
	"github.com/mediagw/mediagw/session"
)

// Persistence of SIP dialogs (issue 13, DESIGN §10). A confirmed leg is
// written to the state whenever what an in-dialog request needs changes
// (confirmation, either CSeq, a re-INVITE's answer, a bridge partner, a
// transfer), and removed when it ends. Restore, before the front listens,
// rebuilds the legs around the connections the table restored: a phone's
// BYE, re-INVITE, INFO or REFER after a restart is answered in its dialog,
// and our BYE goes out with the next CSeq along the recorded route set.
//
// Not kept: legs still being set up (the INVITE transaction dies with the
// process: their connections are released at restore), SRTP legs (the
// table keeps no keys: hung up), a caller at a conference PIN (the gather
// is gone: hung up), and the DTMF menu's keys so far.

// State is where the front keeps its dialogs (session.State).
type State = session.State

// StateDialog is the kind of the persisted dialogs.
const StateDialog = "sip-dialog"

// dialogVersion is the layout of dialogRecord; Restore refuses others.
const dialogVersion = 1

type dialogRecord struct {
	V         int      `json:"v"`
	Tag       string   `json:"tag"` // our tag: the key
	CallID    string   `json:"call_id"`
	UAC       bool     `json:"uac,omitempty"`
	Conn      string   `json:"conn"`
	Action    string   `json:"action"`
	Partner   string   `json:"partner,omitempty"` // the bridge partner's tag
	From      string   `json:"from"`              // our From header value (with our tag)
	To        string   `json:"to"`                // theirs (with their tag)
	Target    string   `json:"target"`            // their Contact URI
	Routes    []string `json:"routes,omitempty"`
	Seq       uint32   `json:"seq"`        // our last CSeq
	RemoteSeq uint32   `json:"remote_seq"` // theirs
	Transport string   `json:"transport"`
	Dest      string   `json:"dest,omitempty"`

	SessID  uint64  `json:"sess_id"`
	Version uint64  `json:"sdp_version"`
	Codec   format  `json:"codec"`
	TE      *format `json:"te,omitempty"`
	Dir     uint8   `json:"dir"`
	PtimeMs int     `json:"ptime_ms"`
	Local   string  `json:"local"`
}

// saveLocked queues the leg's dialog when it is confirmed and kept.
// Caller holds l.mu.
func (l *leg) saveLocked() {
	st := l.s.state
	// SRTP legs are written too (without keys): the table cannot restore
	// their connections, so the restore hangs them up with a BYE.
	if st == nil || l.state != stateConfirmed || l.dlg.to == nil || l.dlg.from == nil || l.connID == "" {
		return
	}
	st.Put(StateDialog, l.tag, l.appendRecord(make([]byte, 0, 512)))
}

// appendRecord writes the leg as a dialogRecord in JSON: by hand, because
// it runs on every answered call (json.Marshal and the headers' Value cost
// several per cent of the call rate); TestDialogRecordEncoding holds it to
// encoding/json's reading. From and To are formatted once per dialog (they
// do not change once it is confirmed), the target when it changes. Caller
// holds mu.
func (l *leg) appendRecord(b []byte) []byte {
	if l.rec.from == "" {
		l.rec.from, l.rec.to = l.dlg.from.Value(), l.dlg.to.Value()
	}
	if l.rec.target == "" {
		l.rec.target = l.dlg.target.String()
	}
	b = jsonw.Field(b, "v", true)
	b = strconv.AppendInt(b, dialogVersion, 10)
	b = jsonw.StringField(b, "tag", l.tag)
	b = jsonw.StringField(b, "call_id", l.callID)
	if l.uac {
		b = jsonw.BoolField(b, "uac", true)
	}
	b = jsonw.StringField(b, "conn", l.connID)
	b = jsonw.StringField(b, "action", l.action)
	if l.partner != nil {
		b = jsonw.StringField(b, "partner", l.partner.tag)
	}
	b = jsonw.StringField(b, "from", l.rec.from)
	b = jsonw.StringField(b, "to", l.rec.to)
	b = jsonw.StringField(b, "target", l.rec.target)
	if len(l.dlg.routes) > 0 {
		b = jsonw.Field(b, "routes", false)
		for i, r := range l.dlg.routes {
			if i == 0 {
				b = append(b, '[')
			} else {
				b = append(b, ',')
			}
			b = jsonw.String(b, r)
		}
		b = append(b, ']')
	}
	b = jsonw.UintField(b, "seq", uint64(l.dlg.seq))
	b = jsonw.UintField(b, "remote_seq", uint64(l.dlg.remoteSeq))
	b = jsonw.StringField(b, "transport", l.dlg.transport)
	if l.dlg.dest != "" {
		b = jsonw.StringField(b, "dest", l.dlg.dest)
	}
	b = jsonw.UintField(b, "sess_id", l.media.sessID)
	b = jsonw.UintField(b, "sdp_version", l.media.version)
	b = appendFormat(jsonw.Field(b, "codec", false), l.media.codec)
	if l.media.te != nil {
		b = appendFormat(jsonw.Field(b, "te", false), *l.media.te)
	}
	b = jsonw.UintField(b, "dir", uint64(l.media.dir))
	b = jsonw.IntField(b, "ptime_ms", int64(l.media.ptime/time.Millisecond))
	b = jsonw.Field(b, "local", false)
	b = append(b, '"')
	b = l.media.local.AppendTo(b)
	return append(b, '"', '}')
}

// appendFormat writes f as encoding/json would (its exported fields).
func appendFormat(b []byte, f format) []byte {
	b = jsonw.Field(b, "PT", true)
	b = strconv.AppendUint(b, uint64(f.PT), 10)
	b = jsonw.StringField(b, "Name", f.Name)
	b = jsonw.IntField(b, "Rate", int64(f.Rate))
	b = jsonw.IntField(b, "Channels", int64(f.Channels))
	b = jsonw.StringField(b, "Fmtp", f.Fmtp)
	return append(b, '}')
}

// unsave removes the leg's dialog from the state.
func (l *leg) unsave() {
	if l.s.state != nil {
		l.s.state.Delete(StateDialog, l.tag)
	}
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Dialogs  int // legs restored
	Lost     int // dialogs whose connection the table could not restore (port taken, SRTP): hung up with BYE once serving
	Dropped  int // records that do not decode or do not fit their connection
	Released int // SIP connections the table restored that no dialog owned
}

// Restore brings back the dialogs kept in st around the connections the
// table restored, releases the table's SIP connections no dialog owns, and
// keeps st for the dialogs' later changes. Call it once, after the table's
// Restore and before Serve. It fails only when st cannot be read or holds
// a layout this build does not know.
func (s *Server) Restore(st State) (RestoreReport, error) {
	var rep RestoreReport
	var recs []dialogRecord
	var bad []string
	err := st.ForEach(StateDialog, func(id string, v []byte) error {
		var r dialogRecord
		if err := json.Unmarshal(v, &r); err != nil || r.Tag != id {
			bad = append(bad, id)
			return nil
		}
		if r.V != dialogVersion {
			return fmt.Errorf("sip: state of dialog %s has layout %d; this gateway reads %d", id, r.V, dialogVersion)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return rep, err
	}
	s.state = st
	for _, id := range bad {
		st.Delete(StateDialog, id)
		rep.Dropped++
	}
	owned := map[string]bool{}
	legs := map[string]*leg{}
	for _, r := range recs {
		l, err := s.restoreLeg(r)
		if errors.Is(err, errConnGone) { // the dialog is alive at the phone: it gets a BYE
			s.log.WithFields(logrus.Fields{"call_id": r.CallID, "conn_id": r.Conn}).Warn("dialog restored without its media: hanging up once serving")
			rep.Lost++
			continue
		}
		if err != nil {
			s.log.WithError(err).WithFields(logrus.Fields{"call_id": r.CallID, "conn_id": r.Conn}).Warn("dialog not restored")
			st.Delete(StateDialog, r.Tag)
			rep.Dropped++
			continue
		}
		owned[r.Conn] = true
		legs[r.Tag] = l
		rep.Dialogs++
	}
	for _, r := range recs { // bridge partners, once both are back
		a, b := legs[r.Tag], legs[r.Partner]
		if a != nil && b != nil {
			a.partner = b
		}
	}
	for _, c := range s.table.Connections() {
		if c.Owner != session.FrontSIP || owned[c.ID] {
			continue
		}
		if _, err := s.table.DeleteConnection(c.ID, "", session.Release{By: session.FrontSIP, Reason: "no SIP dialog kept (call was being set up)"}); err == nil {
			rep.Released++
		}
	}
	return rep, nil
}

// errConnGone: a dialog whose connection the table did not restore.
var errConnGone = errors.New("connection not restored")

// restoreLeg makes a confirmed leg from r, around its restored connection.
// When the table could not restore the connection, the leg is made without
// one and queued for a BYE (hangUpLost), and errConnGone returned.
func (s *Server) restoreLeg(r dialogRecord) (*leg, error) {
	c, err := s.table.Connection(r.Conn)
	gone := err != nil
	if !gone && r.Action == ActionConference && c.ConferenceID == "" {
		// A caller at the PIN prompt: its gather did not survive; it is
		// hung up rather than left outside the conference for good.
		if _, err := s.table.DeleteConnection(r.Conn, "", session.Release{By: session.FrontSIP, Reason: "PIN entry cut by a restart"}); err != nil {
			s.log.WithError(err).WithField("conn_id", r.Conn).Debug("PIN caller's connection already gone")
		}
		gone = true
	}
	switch {
	case gone:
	case c.Owner != session.FrontSIP || c.Tag != r.Tag:
		return nil, fmt.Errorf("connection %s belongs to another call", r.Conn)
	case r.Dir > uint8(dirInactive):
		return nil, errors.New("bad direction")
	}
	var d dialog
	var from gosip.FromHeader
	if from.DisplayName, err = gosip.ParseAddressValue(r.From, &from.Address, &from.Params); err != nil {
		return nil, fmt.Errorf("From %q: %w", r.From, err)
	}
	var to gosip.ToHeader
	if to.DisplayName, err = gosip.ParseAddressValue(r.To, &to.Address, &to.Params); err != nil {
		return nil, fmt.Errorf("To %q: %w", r.To, err)
	}
	if err := gosip.ParseUri(r.Target, &d.target); err != nil {
		return nil, fmt.Errorf("target %q: %w", r.Target, err)
	}
	d.from, d.to, d.routes, d.seq, d.remoteSeq, d.transport, d.dest = &from, &to, r.Routes, r.Seq, r.RemoteSeq, r.Transport, r.Dest
	local, err := netip.ParseAddrPort(r.Local)
	if err != nil {
		return nil, fmt.Errorf("local media address %q: %w", r.Local, err)
	}
	l := &leg{s: s, tag: r.Tag, callID: r.CallID, uac: r.UAC, done: make(chan struct{}), up: make(chan struct{}),
		invited: make(chan struct{}), acks: make(map[uint32]chan *gosip.Request),
		state: stateConfirmed, connID: r.Conn, action: r.Action, dlg: d,
		media: mediaState{sessID: r.SessID, version: r.Version, codec: r.Codec, te: r.TE, dir: direction(r.Dir),
			ptime: time.Duration(r.PtimeMs) * time.Millisecond, local: local}}
	close(l.up)
	close(l.invited)
	if gone {
		l.connID = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.legs[l.tag] != nil {
		return nil, fmt.Errorf("dialog tag %s twice", l.tag)
	}
	s.legs[l.tag] = l
	if !l.uac {
		s.inbound++
	}
	if gone {
		s.lost = append(s.lost, l)
		return l, errConnGone
	}
	return l, nil
}

// hangUpLost sends BYE, from the transport that has just started serving,
// in the restored dialogs that lost their media.
func (s *Server) hangUpLost(network string) {
	s.mu.Lock()
	var bye []*leg
	keep := s.lost[:0]
	for _, l := range s.lost {
		if l.dlg.transport == network {
			bye = append(bye, l)
		} else {
			keep = append(keep, l)
		}
	}
	s.lost = keep
	s.mu.Unlock()
	for _, l := range bye {
		l.end(endCause{bye: true, reason: `SIP;cause=503;text="media not restored after a restart"`})
	}
}
