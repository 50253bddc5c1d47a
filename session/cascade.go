package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Cascades (DESIGN §10): a member that arrives at this node for a
// conference another node holds joins a local conference of the same name,
// a cascade, whose first member is a link: a connection of this node whose
// far end is a member the holder makes in its own conference
// (Cluster.Cascade). Each side mixes the link like any member, so this
// node's members hear the holder's (and, through it, every other node's)
// and the holder's hear these; nobody hears itself, since no mix sends a
// member its own voice and the cascades form a star around the holder.
//
// A cascade goes when its last member leaves (the link is released here and
// its far end on the holder, Cluster.Uncascade), when its link goes (the
// holder released the conference, or its member of the link: every member
// here is released with it), or when the holder dies. Cascades are not
// kept in the state: after a restart their members' calls come back
// without them.

// cascade is a conference's link to the node holding its name.
type cascade struct {
	owner  string // the node holding the conference
	link   string // our connection of the link
	remote string // the holder's ConnectionId of the link
}

// CascadeCallID marks the holder's side of a link (its connection's
// CallId): "cascade:<node>", the node the link comes from.
func CascadeCallID(node string) string { return "cascade:" + node }

// cascadeWait bounds the round trip that makes the holder's side.
const cascadeWait = 3 * time.Second

// cascadeJoin joins connID to a cascade of confID, held by node owner,
// making the cascade (and its link) if this node has none yet.
func (t *Table) cascadeJoin(confID, owner, connID string, a MemberAttrs) (Conference, error) {
	cl := t.cfg.Cluster
	t.mu.Lock()
	if cf, ok := t.confs[confID]; ok { // made meanwhile
		defer t.unlockAnnounce()
		if err := t.join(cf, connID, a); err != nil {
			return Conference{}, err
		}
		return cf.snapshot(), nil
	}
	c, ok := t.conns[connID]
	var codec string
	if ok {
		codec = c.Codec
	}
	t.mu.Unlock()
	if !ok {
		return Conference{}, fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
	}
	if !mixable(codec) {
		return Conference{}, fmt.Errorf("%w: %s cannot join the mixer of conference %s", ErrCodecUnsupported, codec, confID)
	}
	link, err := t.CreateConnection(ConnectionParams{Codec: "PCMU", Ptime: t.cfg.Conference.Ptime, Owner: FrontSystem,
		CallID: CascadeCallID(owner), Mode: ModeSendRecv})
	if err != nil {
		return Conference{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cascadeWait)
	remote, remoteID, err := cl.Cascade(ctx, owner, confID, link.Local)
	cancel()
	if err != nil {
		_, _ = t.DeleteConnection(link.ID, "", Release{By: FrontSystem, Reason: "cascade refused"})
		var se *Error
		if errors.As(err, &se) {
			return Conference{}, err
		}
		return Conference{}, fmt.Errorf("%w: cascading to node %s: %v", ErrNoResources, owner, err)
	}
	if _, err := t.ModifyConnection(link.ID, ConnectionParams{Remote: remote}); err != nil {
		_, _ = t.DeleteConnection(link.ID, "", Release{By: FrontSystem, Reason: "cascade failed"})
		cl.Uncascade(owner, remoteID)
		return Conference{}, err
	}
	t.mu.Lock()
	defer t.unlockAnnounce()
	if cf, ok := t.confs[confID]; ok { // another member made one meanwhile: ours goes
		t.mu.Unlock()
		_, _ = t.DeleteConnection(link.ID, "", Release{By: FrontSystem, Reason: "cascade made twice"})
		cl.Uncascade(owner, remoteID)
		t.mu.Lock()
		if err := t.join(cf, connID, a); err != nil {
			return Conference{}, err
		}
		return cf.snapshot(), nil
	}
	cf, err := t.newConf(confID, KindConference)
	if err == nil {
		cf.cascade = &cascade{owner: owner, link: link.ID, remote: remoteID}
		err = t.install(cf, link.ID, MemberAttrs{})
	}
	if err == nil {
		if err = t.join(cf, connID, a); err != nil {
			t.mu.Unlock()
			_, _ = t.DeleteConnection("", confID, Release{By: FrontSystem, Reason: "cascade join failed"})
			t.mu.Lock()
			return Conference{}, err
		}
		t.log.WithField("conf_id", confID).WithField("holder", owner).WithField("link", link.ID).Info("conference cascaded to its holder")
		return cf.snapshot(), nil
	}
	t.mu.Unlock()
	_, _ = t.DeleteConnection(link.ID, "", Release{By: FrontSystem, Reason: "cascade failed"})
	cl.Uncascade(owner, remoteID)
	t.mu.Lock()
	return Conference{}, err
}

// collapseLocked releases a cascade whose members all left (its link is
// all that is left). Caller holds mu.
func (t *Table) collapseLocked(cf *conf, rel *releaser) bool {
	if cf.cascade == nil || len(cf.members) != 1 || cf.members[0].c.ID != cf.cascade.link {
		return false
	}
	link := cf.members[0].c
	t.leave(cf, link)
	t.releaseConn(link, rel)
	t.releaseConf(cf, rel)
	return true
}

// PeerConnectionReleased is told of a connection another node released
// (its event): if it was the far end of one of this node's links, that
// cascade is released with every member.
func (t *Table) PeerConnectionReleased(node, connID string) {
	t.mu.Lock()
	var confID string
	for id, cf := range t.confs {
		if cf.cascade != nil && cf.cascade.owner == node && cf.cascade.remote == connID {
			confID = id
			cf.cascade.remote = "" // gone: nothing to release over there
			break
		}
	}
	t.mu.Unlock()
	if confID != "" {
		_, _ = t.DeleteConnection("", confID, Release{By: FrontSystem, Reason: "the conference ended on node " + node})
	}
}

// PeerDown is told of a node declared dead: the cascades to it are
// released with their members, and so are the links other nodes' cascades
// had into this node's conferences from it.
func (t *Table) PeerDown(node string) {
	t.mu.Lock()
	var confs, conns []string
	for id, cf := range t.confs {
		if cf.cascade != nil && cf.cascade.owner == node {
			cf.cascade.remote = ""
			confs = append(confs, id)
		}
	}
	for id, c := range t.conns {
		if c.CallID == CascadeCallID(node) && c.Owner != FrontSystem {
			conns = append(conns, id)
		}
	}
	t.mu.Unlock()
	r := Release{By: FrontSystem, Reason: "node " + node + " is down"}
	for _, id := range confs {
		_, _ = t.DeleteConnection("", id, r)
	}
	for _, id := range conns {
		_, _ = t.DeleteConnection(id, "", r)
	}
}
