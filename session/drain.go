package session

// Drain stops (on) or resumes (off) taking new connections, for an operator
// moving traffic off this gateway: CreateConnection answers ErrDraining
// (ResultCode 5) while every connection and conference in progress goes on
// until it ends by itself. It reports whether the table now refuses new
// connections (always, once Shutdown began: Drain(false) cannot undo that).
func (t *Table) Drain(on bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refusing = on
	if t.log != nil {
		t.log.WithField("draining", on).Info("drain set by the operator")
	}
	return t.draining || t.refusing
}
