package sip

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/session"
)

// The DTMF menu of SIP conference members (sip.menu): a key sequence such
// as "*6" runs an action for the member who keyed it. Keys are matched as
// they arrive (RFC 4733, INFO or in-band: whatever the table announces as
// DigitReceived); a sequence that can no longer match starts over with its
// last key, and one left unfinished for menuPause is forgotten. The menu
// only listens: a GatherDigits on the same connection still gets every key.
//
// Actions: mute toggles the member's own mute (a low beep when muted, a
// high one when unmuted), leave hangs the call up.

const (
	menuMute  = "mute"
	menuLeave = "leave"
	menuPause = 3 * time.Second
	menuMax   = 8 // keys in one sequence
)

func checkMenuEntry(keys, action string) error {
	if keys == "" || len(keys) > menuMax {
		return errors.New("a key sequence is 1-8 keys")
	}
	for i := range len(keys) {
		if _, ok := session.DigitCode(keys[i]); !ok {
			return errors.New("keys are 0-9, *, #, A-D")
		}
	}
	if action != menuMute && action != menuLeave {
		return errors.New("the action is mute or leave")
	}
	return nil
}

// menuState is what each member has keyed so far.
type menuState struct {
	mu   sync.Mutex
	keys map[string]menuKeys // by ConnectionId
}

type menuKeys struct {
	keys string
	last time.Time
}

// menuDigit runs one key of connection id (in conference confID) through
// the menu. It runs off the announcing goroutine.
func (s *Server) menuDigit(id, confID string, code byte) {
	const keyOf = "0123456789*#ABCD"
	if int(code) >= len(keyOf) {
		return
	}
	key := keyOf[code]
	now := time.Now()
	s.menu.mu.Lock()
	st := s.menu.keys[id]
	if now.Sub(st.last) > menuPause {
		st.keys = ""
	}
	st.keys += string(key)
	st.last = now
	action := ""
	for {
		if a, ok := s.cfg.Menu[st.keys]; ok {
			action, st.keys = a, ""
			break
		}
		if s.menuPrefix(st.keys) || st.keys == "" {
			break
		}
		st.keys = st.keys[1:] // cannot match any more: start over from a later key
	}
	if st.keys == "" && action == "" {
		delete(s.menu.keys, id)
	} else {
		s.menu.keys[id] = st
	}
	s.menu.mu.Unlock()
	if action != "" {
		s.menuAction(id, confID, action)
	}
}

// menuPrefix reports whether keys begins some menu sequence.
func (s *Server) menuPrefix(keys string) bool {
	for k := range s.cfg.Menu {
		if strings.HasPrefix(k, keys) {
			return true
		}
	}
	return false
}

func (s *Server) menuAction(id, confID, action string) {
	c, err := s.table.Connection(id)
	if err != nil || c.Owner != session.FrontSIP || c.ConferenceID != confID {
		return // released, or not a SIP member any more
	}
	switch action {
	case menuMute:
		cf, err := s.table.Conference(confID)
		if err != nil {
			return
		}
		for _, m := range cf.Members {
			if m.ConnectionID != id {
				continue
			}
			a := m.MemberAttrs
			a.Muted = !a.Muted
			if err := s.table.SetConfereeAttribute(confID, id, a); err != nil {
				s.log.WithError(err).WithField("conn_id", id).Info("menu mute")
				return
			}
			freq := 700.0 // unmuted: high
			if a.Muted {
				freq = 350
			}
			_, _ = s.table.PlayTone(id, "", session.ToneParams{Freq1: freq, Level1: -16, Duration: 150 * time.Millisecond, State: "sip-menu"})
			return
		}
	case menuLeave:
		if l := s.leg(c.Tag); l != nil {
			l.end(endCause{bye: true, reason: `SIP;cause=200;text="left by the DTMF menu"`,
				release: session.Release{By: session.FrontSIP, Reason: "left by the DTMF menu"}})
		}
	}
}
