package mgcp

import (
	"errors"
	"strings"

	"github.com/mediagw/mediagw/session"
)

// Signals (S:) at work: the DTMF package's digits (D/0-9, *, #, A-D) are
// sent to the endpoint's connections, or to the one an @ConnectionId names,
// by the session table's SendDigits: RFC 4733 events when the connection's
// remote negotiated telephone-event, in-band tones otherwise. They are
// brief signals (RFC 3660 §2.3): sent once, nothing to keep. Every other
// signal RFC 3660 defines is refused with 513 (packages.go).

// dtmfSignal is the key of a D-package digit signal, or false.
func dtmfSignal(e EventName) (byte, bool) {
	if (e.Pkg != "" && e.Pkg != "D") || len(e.Name) != 1 {
		return 0, false
	}
	k := e.Name[0]
	if _, ok := session.DigitCode(k); !ok {
		return 0, false
	}
	if k >= 'a' && k <= 'd' {
		k -= 'a' - 'A'
	}
	return k, true
}

// signalPlan is what a validated S: will do: keys per ConnectionId ("" =
// every connection of the endpoint, "$" = the one being created).
type signalPlan struct {
	keys map[string]string
}

// planSignals validates S: into a plan; any signal but a DTMF digit is
// refused with its code.
func planSignals(sigs []RequestedEvent, resolve connResolver) (*signalPlan, *Response) {
	var p *signalPlan
	for _, sg := range sigs {
		k, ok := dtmfSignal(sg.EventName)
		if !ok {
			if code := signalCode(sg.EventName); code != 0 {
				return nil, fail(code, "signal %s", sg.EventName)
			}
			continue
		}
		if sg.HasParams {
			return nil, fail(codeEventParam, "signal %s takes no parameters", sg.EventName)
		}
		target := ""
		switch sg.Conn {
		case "", "*":
		default:
			id, bad := resolve(sg.Conn)
			if bad != nil {
				return nil, bad
			}
			target = id
		}
		if p == nil {
			p = &signalPlan{keys: map[string]string{}}
		}
		p.keys[target] += string(k)
	}
	return p, nil
}

// playSignals sends the planned digits on ep's connections (newConn
// resolves "$"); a relayed connection borrows a mixer for it (session).
func (s *Server) playSignals(ep endpoint, p *signalPlan, newConn string) *Response {
	if p == nil {
		return nil
	}
	for target, keys := range p.keys {
		var conns []string
		switch target {
		case "":
			cf, err := s.table.Conference(ep.confID)
			if err != nil {
				return fail(codeUnknownEndpoint, "signal on %s: %v", ep.local(), err)
			}
			for _, m := range cf.Members {
				conns = append(conns, m.ConnectionID)
			}
		case "$":
			conns = []string{newConn}
		default:
			conns = []string{target}
		}
		if len(conns) == 0 {
			return fail(codeCannotSignal, "signal D/%s: %s has no connection", keys, ep.local())
		}
		for _, id := range conns {
			if _, err := s.table.SendDigits(id, keys, "mgcp"); err != nil {
				if errors.Is(err, session.ErrOperationActive) {
					return fail(codeCannotSignal, "signal D/%s on %s: digits are being sent already", keys, id)
				}
				return fail(codeCannotSignal, "signal D/%s on %s: %s", keys, id, strings.TrimPrefix(err.Error(), "invalid parameter value: "))
			}
		}
	}
	return nil
}
