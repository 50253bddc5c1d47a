package confbridge

// talkChange is one member starting or stopping to talk.
type talkChange struct {
	id      string
	talking bool
}

// talkChangesLocked collects the members whose talking state differs from
// what Options.OnTalk was last told, and marks them told (mu held). A
// member of a hairpinned or closed bridge is not detected, so it counts as
// silent. The returned slice is the bridge's own buffer, valid until the
// next tick (ticks of one bridge never overlap).
func (b *Bridge) talkChangesLocked() []talkChange {
	if b.opts.OnTalk == nil {
		return nil
	}
	out := b.talkOut[:0]
	detected := !b.closed && !b.hairpin
	for _, m := range b.members {
		now := m.talking && detected
		if now != m.told {
			m.told = now
			out = append(out, talkChange{id: m.id, talking: now})
		}
	}
	b.talkOut = out
	return out
}

// reportTalk calls Options.OnTalk for each change, outside the lock.
func (b *Bridge) reportTalk(changes []talkChange) {
	for _, c := range changes {
		b.opts.OnTalk(c.id, c.talking)
	}
}

// Talking reports whether a member is talking now (false for one that is
// not in the bridge, and for every member of a hairpinned bridge).
func (b *Bridge) Talking(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.byID[id]
	return ok && m.talking && !b.hairpin && !b.closed
}
