package sip

import (
	"strings"
	"time"

	"github.com/mediagw/mediagw/session"
)

// A conference route with a PIN (routes: pin:) answers the caller but
// keeps its connection outside the conference: it hears the route's prompt
// (or a short tone), keys the PIN (RFC 4733 events, SIP INFO or in-band:
// whatever the session table hears on the connection) and only then joins.
// An entry ends with '#', with as many keys as the PIN has, or after 5 s
// without a key; three wrong entries (or 30 s without one) end the call
// with a BYE. The gate runs on the table's operations: a Play or PlayTone
// and a GatherDigits, whose completion (an OperationComplete event) moves
// it on.

const (
	pinTries      = 3
	pinInterDigit = 5 * time.Second
	pinMaxTime    = 30 * time.Second
	pinState      = "sip-pin"
)

// pinGate is one caller waiting at a PIN. Guarded by Server.mu.
type pinGate struct {
	l      *leg
	connID string
	m      match
	tries  int
	prompt string // the OperationId of the prompt playing, if any
}

func validPin(pin string) bool {
	if pin == "" || len(pin) > 16 {
		return false
	}
	for i := range len(pin) {
		if c, ok := session.DigitCode(pin[i]); !ok || c == 11 { // '#' ends an entry
			return false
		}
	}
	return true
}

// startPin puts the answered caller at the gate of m's conference.
func (s *Server) startPin(l *leg, connID string, m match) {
	l.mu.Lock()
	ended := l.state == stateEnded
	l.mu.Unlock()
	if ended {
		return
	}
	g := &pinGate{l: l, connID: connID, m: m}
	s.mu.Lock()
	s.pins[connID] = g
	s.mu.Unlock()
	s.askPin(g)
}

// askPin plays the prompt and gathers one entry.
func (s *Server) askPin(g *pinGate) {
	var op string
	var err error
	if g.m.Prompt != "" {
		op, err = s.table.Play(g.connID, "", session.PlayParams{Prompts: []string{g.m.Prompt}, MaxDigits: 1, TermDigit: -1, State: pinState})
	} else {
		op, err = s.table.PlayTone(g.connID, "", session.ToneParams{Freq1: 440, Level1: -13, Duration: 300 * time.Millisecond, State: pinState})
	}
	if err != nil {
		g.l.logger().WithError(err).Warn("PIN prompt not played")
	}
	s.mu.Lock()
	g.prompt = op
	s.mu.Unlock()
	term, _ := session.DigitCode('#')
	if _, err := s.table.GatherDigits(g.connID, session.GatherParams{MaxDigits: len(g.m.Pin), TermDigit: int(term),
		InterDigit: pinInterDigit, MaxTime: pinMaxTime, State: pinState}); err != nil {
		g.l.logger().WithError(err).Warn("PIN gather not started: hanging up")
		s.endPin(g, "PIN entry failed")
	}
}

// pinEntered judges one entry (a GatherDigits of the gate completed).
func (s *Server) pinEntered(r session.OperationResult) {
	s.mu.Lock()
	g := s.pins[r.ConnectionID]
	s.mu.Unlock()
	if g == nil || r.TerminationCondition == session.TermAutoStop || r.TerminationCondition == session.TermUserStop {
		return
	}
	if strings.TrimSuffix(r.Digits, "#") == g.m.Pin {
		s.mu.Lock()
		delete(s.pins, g.connID)
		prompt := g.prompt
		s.mu.Unlock()
		if prompt != "" {
			_, _ = s.table.StopMediaOperation(g.connID, prompt) // ended already: nothing to stop
		}
		if _, err := s.table.JoinOrCreate(g.m.ConfID, session.KindConference, g.connID, session.MemberAttrs{}); err != nil {
			g.l.logger().WithError(err).Warn("joining after the right PIN failed: hanging up")
			s.endPin(g, "conference join failed")
			return
		}
		g.l.logger().WithField("conf_id", g.m.ConfID).Info("PIN right: joined")
		return
	}
	s.mu.Lock()
	g.tries++
	tries := g.tries
	s.mu.Unlock()
	if tries >= pinTries {
		g.l.logger().WithField("conf_id", g.m.ConfID).Info("wrong PIN three times: hanging up")
		s.endPin(g, "wrong PIN")
		return
	}
	s.askPin(g)
}

// endPin hangs the caller up (BYE); its release ends the gate.
func (s *Server) endPin(g *pinGate, why string) {
	s.mu.Lock()
	delete(s.pins, g.connID)
	s.mu.Unlock()
	g.l.end(endCause{bye: true, reason: `SIP;cause=403;text="` + why + `"`,
		release: session.Release{By: session.FrontSIP, Reason: why}})
}
