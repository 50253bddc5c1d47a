package session

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Cluster is a cluster's registry as the table uses it (package cluster
// implements it; DESIGN §10). Config.Cluster nil: a standalone gateway.
//
// The table claims a conference name before it creates a named conference
// (outside its lock: a Redis round trip), gives the claim up when the
// conference is released, and reports every connection made and released.
// All but ClaimConference only queue.
type Cluster interface {
	// Name is this node's name.
	Name() string
	// ClaimConference claims name for this node and returns the node that
	// holds it (this one's Name when the claim is ours).
	ClaimConference(ctx context.Context, name string) (holder string, err error)
	// ReleaseConference gives the claim of name up.
	ReleaseConference(name string)
	ConnectionCreated(id string)
	ConnectionReleased(id string)
	// ConferenceOwner names the node holding conference name ("" none).
	ConferenceOwner(ctx context.Context, name string) (string, error)
	// Cascade asks node owner to make a member of its conference name whose
	// media goes to local; it returns that member's media address and ID
	// (cascade.go).
	Cascade(ctx context.Context, owner, name string, local netip.AddrPort) (remote netip.AddrPort, remoteID string, err error)
	// Uncascade releases that member (queued: it never blocks).
	Uncascade(owner, remoteID string)
}

// ElsewhereError: a named conference is held by another node of the
// cluster. Its ResultCode is 8 (media resource not available here); the
// fronts and the HTTP API tell the caller which node holds it.
type ElsewhereError struct {
	Conference, Node string
}

func (e *ElsewhereError) Error() string {
	return fmt.Sprintf("conference %s is held by node %s of the cluster", e.Conference, e.Node)
}

// Unwrap is ErrNoResources: ResultCode 8.
func (e *ElsewhereError) Unwrap() error { return ErrNoResources }

// claimWait bounds a conference claim's round trip.
const claimWait = 2 * time.Second

// claim claims confID in the cluster before a conference of that name is
// made here. Caller does not hold mu.
func (t *Table) claim(confID string) error {
	cl := t.cfg.Cluster
	if cl == nil || confID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimWait)
	defer cancel()
	holder, err := cl.ClaimConference(ctx, confID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoResources, err)
	}
	if holder != cl.Name() {
		return &ElsewhereError{Conference: confID, Node: holder}
	}
	return nil
}

// unclaimLocked gives up a claim that no conference took. Caller holds mu.
func (t *Table) unclaimLocked(confID string) {
	if t.cfg.Cluster != nil && confID != "" && t.confs[confID] == nil {
		t.cfg.Cluster.ReleaseConference(confID)
	}
}

// idOf is the decimal ID of the nth ID: n itself, or in a cluster
// n*IDStride+IDIndex, which names this node.
func (t *Table) idOf(n uint64) string {
	if t.cfg.IDStride > 1 {
		n = n*t.cfg.IDStride + t.cfg.IDIndex
	}
	return strconv.FormatUint(n, 10)
}

// counterOf is the counter value an ID of this node was made from (a
// restore goes on after it).
func (t *Table) counterOf(id uint64) uint64 {
	if t.cfg.IDStride > 1 {
		return id / t.cfg.IDStride
	}
	return id
}

// reclaim claims again the names of the restored conferences that held
// one (the registry may have dropped them while this node was down). One
// another node took meanwhile is reported: both nodes then hold a
// conference of that name until one of them ends.
func (t *Table) reclaim() {
	cl := t.cfg.Cluster
	if cl == nil {
		return
	}
	t.mu.Lock()
	var names []string
	for id, cf := range t.confs {
		if cf.claimed {
			names = append(names, id)
		}
	}
	t.mu.Unlock()
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), claimWait)
		holder, err := cl.ClaimConference(ctx, name)
		cancel()
		switch {
		case err != nil:
			t.log.WithError(err).WithField("conf_id", name).Warn("restored conference not claimed again in the cluster")
		case holder != cl.Name():
			t.log.WithField("conf_id", name).WithField("holder", holder).Error("a restored conference's name is held by another node meanwhile")
		}
	}
}
