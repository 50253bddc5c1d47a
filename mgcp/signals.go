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
// brief signals (RFC 3660 §2.3): sent once, nothing to keep.
//
// The announcement package's A/ann(file:NAME.wav) is a time-out signal: a
// Play of NAME under media.dir to the endpoint (everyone on a cnf/ or
// rtpbridge/ endpoint) or to the @ConnectionId. Its end is the event A/oc
// (played out) or A/of (failed), notified when R: asks for them; a new
// request, or a requested event detected without the K action, stops it
// (no event then). A file that is missing or not a WAV we play is 514.
// Every other signal RFC 3660 defines is refused with 513 (packages.go).

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
// every connection of the endpoint, "$" = the one being created), and
// announcements to play.
type signalPlan struct {
	keys map[string]string
	anns []annPlay
}

// annPlay is one A/ann: a file under media.dir, played to a connection
// (target as in keys) or, with target "", to the whole endpoint.
type annPlay struct {
	target, file string
}

// annState marks the Play operations started by A/ann; the endpoint's
// name follows, so their completion finds its request (notify.go).
const annState = "mgcp-ann:"

// planSignals validates S: into a plan; any signal but a DTMF digit or an
// announcement is refused with its code.
func planSignals(sigs []RequestedEvent, resolve connResolver) (*signalPlan, *Response) {
	var p *signalPlan
	for _, sg := range sigs {
		k, digit := dtmfSignal(sg.EventName)
		ann := isAnn(sg.EventName)
		if !digit && !ann {
			if code := signalCode(sg.EventName); code != 0 {
				return nil, fail(code, "signal %s", sg.EventName)
			}
			continue
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
		if ann {
			file, ok := annFile(sg)
			if !ok {
				return nil, fail(codeEventParam, "signal %s: want A/ann(file:NAME.wav), a file under media.dir", sg.EventName)
			}
			p.anns = append(p.anns, annPlay{target: target, file: file})
			continue
		}
		if sg.HasParams {
			return nil, fail(codeEventParam, "signal %s takes no parameters", sg.EventName)
		}
		p.keys[target] += string(k)
	}
	return p, nil
}

func isAnn(e EventName) bool { return e.Pkg == "A" && strings.EqualFold(e.Name, "ann") }

// annFile is the file an A/ann(url[,parms]) names: "file:NAME",
// "file://NAME" or a bare NAME, relative to media.dir (the session table
// refuses a name that leaves it).
func annFile(sg RequestedEvent) (string, bool) {
	if !sg.HasParams {
		return "", false
	}
	url, _, _ := strings.Cut(sg.Params, ",")
	url = strings.TrimSpace(url)
	if rest, ok := strings.CutPrefix(url, "file://"); ok {
		url = rest
	} else if rest, ok := strings.CutPrefix(url, "file:"); ok {
		url = rest
	}
	if url == "" || strings.Contains(url, "://") {
		return "", false
	}
	return url, true
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
	for _, a := range p.anns {
		connID, confID := a.target, ""
		switch a.target {
		case "":
			confID = ep.confID
		case "$":
			connID = newConn
		}
		op, err := s.table.Play(connID, confID, session.PlayParams{Prompts: []string{a.file}, TermDigit: -1, State: annState + ep.local()})
		if err != nil {
			return fail(codeCannotAnnounce, "announcement %s: %s", a.file, err)
		}
		s.mu.Lock()
		if st := s.endpoints[ep.local()]; st != nil {
			if sym, ended := st.annEarly[op]; ended { // its NTFY follows the response
				delete(st.annEarly, op)
				s.afterReply = append(s.afterReply, s.observe(ep.local(), st, digitEvent{conn: connID, sym: sym})...)
			} else {
				st.anns = append(st.anns, op)
			}
		}
		stops := s.takeAnnStops()
		s.mu.Unlock()
		s.stopAnns(stops)
	}
	return nil
}

// stopAnns ends announcements a new request or a detected event stopped
// (RFC 3435 §2.3.3: time-out signals stop then unless K keeps them). Called
// without mu.
func (s *Server) stopAnns(ops []string) {
	for _, op := range ops {
		_, _ = s.table.StopMediaOperation("", op) // ended meanwhile: nothing to stop
	}
}

// takeAnnStops returns the announcements to stop. Caller holds mu.
func (s *Server) takeAnnStops() []string {
	ops := s.annStops
	s.annStops = nil
	return ops
}
