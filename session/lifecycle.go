package session

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
)

// Run sweeps for media timeouts until ctx ends: a connection that expects
// media (its mode receives) and has had none for Config.MediaTimeout since
// its last packet (in a two-party bridge: on either leg), or since it was
// created or modified, is released with
// ResultCode 12 (session inactivity) by FrontSystem.
func (t *Table) Run(ctx context.Context) {
	if t.cfg.MediaTimeout <= 0 {
		<-ctx.Done()
		return
	}
	every := t.cfg.MediaTimeout / 4
	every = min(max(every, 50*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, id := range t.idle(now) {
				_, err := t.DeleteConnection(id, "", Release{By: FrontSystem, Code: CodeInactivity, Reason: "media timeout"})
				if err != nil {
					continue // released meanwhile by someone else
				}
				t.met.mediaTimeouts.Inc()
				t.log.WithField("conn_id", id).Info("media timeout: connection released")
			}
		}
	}
}

// idle lists the connections whose media has timed out at now.
func (t *Table) idle(now time.Time) []string {
	var out []string
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, c := range t.conns {
		if !c.Mode.receives() || c.Mode == ModeLoopback && !c.Remote.IsValid() {
			continue
		}
		base := c.modified
		if last := c.leg.LastReceived(); last.After(base) {
			base = last
		}
		// A bridge carries one call: media flowing either way keeps both
		// legs alive (a one-way call, e.g. an announcement, is not idle).
		if cf := c.conf; cf != nil && cf.kind == KindBridge {
			for _, mb := range cf.members {
				if last := mb.c.leg.LastReceived(); last.After(base) {
					base = last
				}
			}
		}
		if now.Sub(base) >= t.cfg.MediaTimeout {
			out = append(out, id)
		}
	}
	return out
}

// Shutdown refuses new work from now on (ResultCode 5) and releases every
// conference and connection, announced as events with Code 5 by FrontSystem.
func (t *Table) Shutdown() {
	t.mu.Lock()
	t.draining = true
	confs := make([]string, 0, len(t.confs))
	for id := range t.confs {
		confs = append(confs, id)
	}
	t.mu.Unlock()
	r := Release{By: FrontSystem, Code: CodeDraining, Reason: "gateway shutting down"}
	for _, id := range confs {
		_, _ = t.DeleteConnection("", id, r)
	}
	// Whatever is left was in no conference (or joined one meanwhile).
	for {
		t.mu.Lock()
		var next string
		for id := range t.conns {
			next = id
			break
		}
		t.mu.Unlock()
		if next == "" {
			break
		}
		_, _ = t.DeleteConnection(next, "", r)
	}
	t.log.WithFields(logrus.Fields{"conferences": len(confs)}).Info("session table drained")
}
