package mgcp

import (
	"strings"
)

// Validation of a command's notification request (R:, S:, D:, Q:, T:,
// X:, N:) into the form notify.go installs; the codes are those listed in
// codes.go.

// connResolver maps an @ qualifier to a ConnectionId, or refuses it.
type connResolver func(conn string) (string, *Response)

// readRequest validates the notification request parts of c (R:, S:, D:,
// Q:, X:, N:). It returns nil (and no error) when c carries none of R:,
// S:, X:, so CRCX/MDCX/DLCX without one leave the endpoint's request alone.
func (s *Server) readRequest(c *Command, resolve connResolver, required bool) (*notifyRequest, *Response) {
	rv, hasR := c.Params.Get("R")
	sv, hasS := c.Params.Get("S")
	x, hasX := c.Params.Get("X")
	dv, hasD := c.Params.Get("D")
	qv, hasQ := c.Params.Get("Q")
	if !required && !hasR && !hasS && !hasX {
		if _, hasT := c.Params.Get("T"); hasQ || hasT {
			return nil, fail(codeProtocol, "Q: or T: without a notification request (X:)")
		}
		if hasD { // a digit map alone configures the endpoint for later requests
			dm, err := ParseDigitMap(dv)
			if err != nil {
				return nil, fail(codeProtocol, "D: %v", err)
			}
			return &notifyRequest{requestID: "", dm: dm, dmText: dv, events: nil}, nil
		}
		return nil, nil
	}
	if !hasX || strings.TrimSpace(x) == "" {
		return nil, fail(codeProtocol, "%s: notification request without X:", c.Verb)
	}
	nr := &notifyRequest{requestID: strings.TrimSpace(x), raw: keptRequest(c)}
	if !isToken(nr.requestID) || len(nr.requestID) > 32 {
		return nil, fail(codeProtocol, "X: %q is not a request identifier", clip(x))
	}
	if hasD {
		dm, err := ParseDigitMap(dv)
		if err != nil {
			return nil, fail(codeProtocol, "D: %v", err)
		}
		nr.dm, nr.dmText = dm, strings.TrimSpace(dv)
	}
	if hasQ {
		q, err := ParseQuarantine(qv)
		if err != nil {
			return nil, fail(codeBadQuarantine, "Q: %v", err)
		}
		nr.q = q
	}
	evs, err := ParseRequestedEvents(rv)
	if err != nil {
		return nil, fail(codeProtocol, "R: %v", err)
	}
	sigs, err := ParseSignalRequests(sv)
	if err != nil {
		return nil, fail(codeProtocol, "S: %v", err)
	}
	if tv, ok := c.Params.Get("T"); ok { // DetectEvents: event names, no actions
		det, err := ParseSignalRequests(tv)
		if err != nil {
			return nil, fail(codeProtocol, "T: %v", err)
		}
		for i := range det {
			if det[i].HasParams {
				return nil, fail(codeEventParam, "T: event %s takes no parameters", det[i].EventName)
			}
		}
		var bad *Response
		if nr.detect, bad = compileEvents(det, resolve); bad != nil {
			return nil, bad
		}
		nr.detText, nr.hasT = FormatRequestedEvents(det), true
	}
	nr.rText = FormatRequestedEvents(evs) // no R: is the empty list: detection stops
	if hasR {
		var bad *Response
		if nr.events, bad = compileEvents(evs, resolve); bad != nil {
			return nil, bad
		}
	}
	var bad *Response
	if nr.signals, bad = planSignals(sigs, resolve); bad != nil {
		return nil, bad
	}
	if n, ok := c.Params.Get("N"); ok {
		nr.notify, nr.notifyDst = n, parseNotifiedEntity(n)
	}
	return nr, nil
}

// checkSignals refuses every signal request, each with its precise code
// (packages.go): 518, 522, or 513 for the ones that exist.
func checkSignals(sigs []RequestedEvent, resolve connResolver) *Response {
	for _, sg := range sigs {
		if code := signalCode(sg.EventName); code != 0 {
			return fail(code, "signal %s", sg.EventName)
		}
	}
	return nil
}

// compileEvents validates R: items (and embedded ones, recursively).
func compileEvents(evs []RequestedEvent, resolve connResolver) ([]reqEvent, *Response) {
	out := make([]reqEvent, 0, len(evs))
	for _, ev := range evs {
		set, code := eventSymbols(ev.EventName)
		if code != 0 {
			return nil, fail(code, "event %s", ev.EventName)
		}
		if ev.HasParams {
			return nil, fail(codeEventParam, "event %s takes no parameters", ev.EventName)
		}
		re := reqEvent{set: set, action: 'N'}
		switch ev.Conn {
		case "":
		case "*":
			re.conn, re.qualify = "*", true
		default:
			id, bad := resolve(ev.Conn)
			if bad != nil {
				return nil, bad
			}
			re.conn, re.qualify = id, true
		}
		var exclusive byte
		for _, a := range ev.Actions {
			switch a.Name {
			case "N", "A", "D", "I":
				if exclusive != 0 {
					return nil, fail(codeBadAction, "event %s: actions %c and %s", ev.EventName, exclusive, a.Name)
				}
				exclusive = a.Name[0]
			case "K":
				re.keep = true
			case "E":
				if re.emb != nil {
					return nil, fail(codeBadAction, "event %s: two embedded requests", ev.EventName)
				}
				emb := &notifyEmbedded{hasR: a.Embedded.HasR}
				if a.Embedded.HasR {
					var bad *Response
					if emb.events, bad = compileEvents(a.Embedded.R, resolve); bad != nil {
						return nil, bad
					}
					emb.rText = FormatRequestedEvents(a.Embedded.R)
				}
				if a.Embedded.HasS {
					if bad := checkSignals(a.Embedded.S, resolve); bad != nil {
						return nil, bad
					}
				}
				if a.Embedded.HasD {
					dm, err := ParseDigitMap(a.Embedded.D)
					if err != nil {
						return nil, fail(codeProtocol, "embedded D: %v", err)
					}
					emb.dm, emb.dmText = dm, a.Embedded.D
				}
				re.emb = emb
			default: // S (swap, deprecated) and extensions
				return nil, fail(codeBadAction, "event %s: action %s", ev.EventName, a.Name)
			}
		}
		switch {
		case exclusive != 0:
			re.action = exclusive
		case re.emb != nil:
			re.action = 'A' // E alone: the event is kept for the next notification
		}
		if re.action == 'I' && re.emb != nil {
			return nil, fail(codeBadAction, "event %s: I with E", ev.EventName)
		}
		out = append(out, re)
	}
	return out, nil
}

// usesDigitMap reports whether any event (or embedded one) has action D.
func usesDigitMap(evs []reqEvent) bool {
	for _, e := range evs {
		if e.action == 'D' || e.emb != nil && e.emb.dm == nil && usesDigitMap(e.emb.events) {
			return true
		}
	}
	return false
}

// resolverFor checks @ qualifiers against endpoint ep; "$" is allowed
// when the command creates or modifies a connection (newConn), "" marks
// it unresolved until the connection exists.
func (s *Server) resolverFor(ep endpoint, dollar bool) connResolver {
	return func(id string) (string, *Response) {
		if id == "$" {
			if !dollar {
				return "", fail(codeBadConnID, "@$ outside CRCX/MDCX")
			}
			return "$", nil
		}
		conn, err := s.table.Connection(id)
		if err != nil || !ep.matches(conn.ConferenceID) {
			return "", fail(codeBadConnID, "@%s is not a connection of %s", clip(id), ep.local())
		}
		return id, nil
	}
}
