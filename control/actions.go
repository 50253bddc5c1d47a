package control

import (
	"fmt"
	"strconv"

	"github.com/mediagw/mediagw/session"
)

// result is an action's result data (beside ResultCode and Branch).
type result map[string]string

// undo releases what a completed action created, for actions that finish
// after their Timeout: the caller never learned the IDs, so nothing may stay.
type undo func()

// action runs one Media Control action against the table.
type action func(t *session.Table, p params) (result, undo, error)

var actions = map[string]action{
	"ReserveConnection":    reserveConnection,
	"CreateConnection":     createConnection,
	"ModifyConnection":     modifyConnection,
	"DeleteConnection":     deleteConnection,
	"CreateConference":     createConference,
	"JoinConference":       joinConference,
	"LeaveConference":      leaveConference,
	"SetConfereeAttribute": setConfereeAttribute,
	"GatherDigits":         gatherDigits,
	"StopMediaOperation":   stopMediaOperation,
	"Play":                 play,
	"PlayTone":             playTone,
	"SendDigits":           sendDigits,
	"Record":               record,
	"DetectSilence":        detectSilence,
	"DetectNonSilence":     detectNonSilence,
}

var byHTTP = session.Release{By: session.FrontHTTP}

func connResult(c session.Connection) result {
	return result{
		"ConnectionId":       c.ID,
		"MediaRxIP":          c.Local.Addr().String(),
		"MediaRxPort":        strconv.Itoa(int(c.Local.Port())),
		"MediaRxControlIP":   c.Local.Addr().String(),
		"MediaRxControlPort": strconv.Itoa(int(c.Local.Port()) + 1),
	}
}

func deleteConn(t *session.Table, id string) undo {
	return func() { _, _ = t.DeleteConnection(id, "", byHTTP) }
}

// newConnection creates an HTTP-owned connection; its undo deletes it.
func newConnection(t *session.Table, cp session.ConnectionParams) (result, undo, error) {
	cp.Owner = session.FrontHTTP
	c, err := t.CreateConnection(cp)
	if err != nil {
		return nil, nil, err
	}
	return connResult(c), deleteConn(t, c.ID), nil
}

// reserveConnection allocates a port pair before the remote is known.
func reserveConnection(t *session.Table, p params) (result, undo, error) {
	cp, err := p.connParams(false)
	if err != nil {
		return nil, nil, err
	}
	return newConnection(t, cp)
}

// createConnection opens a connection to MediaTxIP:MediaTxPort, or completes
// a reserved one when ConnectionId is given.
func createConnection(t *session.Table, p params) (result, undo, error) {
	id, err := p.optional("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	cp, err := p.connParams(true)
	if err != nil {
		return nil, nil, err
	}
	if id != "" {
		c, err := t.ModifyConnection(id, cp)
		if err != nil {
			return nil, nil, err
		}
		return connResult(c), nil, nil
	}
	return newConnection(t, cp)
}

func modifyConnection(t *session.Table, p params) (result, undo, error) {
	id, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	cp, err := p.connParams(false)
	if err != nil {
		return nil, nil, err
	}
	c, err := t.ModifyConnection(id, cp)
	if err != nil {
		return nil, nil, err
	}
	return connResult(c), nil, nil
}

func deleteConnection(t *session.Table, p params) (result, undo, error) {
	connID, err := p.optional("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	confID, err := p.optional("ConferenceId")
	if err != nil {
		return nil, nil, err
	}
	d, err := t.DeleteConnection(connID, confID, byHTTP)
	if err != nil {
		return nil, nil, err
	}
	r := result{"Scope": string(d.Scope)}
	if d.ConferenceReleased {
		r["ConferenceReleased"] = "true"
	}
	return r, nil, nil
}

// memberConnection returns the ConnectionId to place in a conference,
// creating a connection from MediaTx* when none is given.
func memberConnection(t *session.Table, p params) (id string, created result, u undo, err error) {
	id, err = p.optional("ConnectionId")
	if err != nil || id != "" {
		return id, nil, nil, err
	}
	cp, err := p.connParams(true)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w (or give ConnectionId)", err)
	}
	created, u, err = newConnection(t, cp)
	if err != nil {
		return "", nil, nil, err
	}
	return created["ConnectionId"], created, u, nil
}

// createConference makes a conference whose first member is ConnectionId,
// or a new connection to MediaTxIP:MediaTxPort. ConferenceId names it
// (otherwise a numeric ID is chosen).
func createConference(t *session.Table, p params) (result, undo, error) {
	confID, err := p.optional("ConferenceId")
	if err != nil {
		return nil, nil, err
	}
	a, err := p.attrs(session.MemberAttrs{})
	if err != nil {
		return nil, nil, err
	}
	o := session.DefaultConferenceOptions()
	if o.Hairpin, err = p.boolean("Hairpin", o.Hairpin); err != nil {
		return nil, nil, err
	}
	if o.SoundToneOnJoin, err = p.boolean("SoundToneOnJoin", o.SoundToneOnJoin); err != nil {
		return nil, nil, err
	}
	connID, r, u, err := memberConnection(t, p)
	if err != nil {
		return nil, nil, err
	}
	cf, err := t.CreateConferenceWith(confID, session.KindConference, connID, a, o)
	if err != nil {
		if u != nil {
			u()
		}
		return nil, nil, err
	}
	if r == nil {
		r = result{"ConnectionId": connID}
	}
	r["ConferenceId"] = cf.ID
	return r, func() { _, _ = t.DeleteConnection("", cf.ID, byHTTP) }, nil
}

func joinConference(t *session.Table, p params) (result, undo, error) {
	confID, err := p.required("ConferenceId")
	if err != nil {
		return nil, nil, err
	}
	a, err := p.attrs(session.MemberAttrs{})
	if err != nil {
		return nil, nil, err
	}
	connID, r, u, err := memberConnection(t, p)
	if err != nil {
		return nil, nil, err
	}
	if _, err := t.JoinConference(confID, connID, a); err != nil {
		if u != nil {
			u()
		}
		return nil, nil, err
	}
	if r == nil {
		r = result{"ConnectionId": connID}
		u = func() { _, _ = t.DeleteConnection(connID, confID, byHTTP) }
	}
	r["ConferenceId"] = confID
	return r, u, nil
}

func leaveConference(t *session.Table, p params) (result, undo, error) {
	connID, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	confID, err := p.required("ConferenceId")
	if err != nil {
		return nil, nil, err
	}
	return nil, nil, t.LeaveConference(confID, connID, byHTTP)
}

func setConfereeAttribute(t *session.Table, p params) (result, undo, error) {
	connID, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	confID, err := p.required("ConferenceId")
	if err != nil {
		return nil, nil, err
	}
	cf, err := t.Conference(confID)
	if err != nil {
		return nil, nil, err
	}
	var cur session.MemberAttrs
	found := false
	for _, m := range cf.Members {
		if m.ConnectionID == connID {
			cur, found = m.MemberAttrs, true
		}
	}
	if !found {
		// Let the table choose between 22, 23 and 24.
		return nil, nil, t.SetConfereeAttribute(confID, connID, cur)
	}
	a, err := p.attrs(cur)
	if err != nil {
		return nil, nil, err
	}
	return nil, nil, t.SetConfereeAttribute(confID, connID, a)
}
