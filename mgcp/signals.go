package mgcp

import (
	"errors"
	"strconv"
	"strings"
	"time"

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
// announcements and tones to play.
type signalPlan struct {
	keys  map[string]string
	media []mediaSignal
}

// mediaSignal is one A/ann or G tone: played to a connection (target as
// in keys) or, with target "", to the whole endpoint.
type mediaSignal struct {
	target string
	name   string        // "A/ann", "G/rt", ...
	file   string        // A/ann: under media.dir
	to     time.Duration // a time-out signal's timeout; 0 = a brief signal
}

// sigState marks the operations started by signals: the signal's name
// and the endpoint follow, so their completion finds the request
// (notify.go).
const sigState = "mgcp-sig|"

// genericTones are the G package's tones (RFC 3660 §2.1) with North
// American cadences, and the timeout of the time-out ones (0: brief).
var genericTones = map[string]struct {
	steps []session.ToneStep
	to    time.Duration
}{
	"rt": {[]session.ToneStep{{Freq1: 440, Freq2: 480, Level: -19, Duration: 2 * time.Second}, {Duration: 4 * time.Second}}, 180 * time.Second},
	"it": {[]session.ToneStep{{Freq1: 440, Level: -14, Duration: 250 * time.Millisecond}, {Freq1: 620, Level: -14, Duration: 250 * time.Millisecond}}, 30 * time.Second},
	"cf": {[]session.ToneStep{{Freq1: 350, Freq2: 440, Level: -13, Duration: 100 * time.Millisecond}, {Duration: 100 * time.Millisecond}}, 0},
}

// planSignals validates S: into a plan; any signal but a DTMF digit, an
// announcement or a G tone is refused with its code.
func planSignals(sigs []RequestedEvent, resolve connResolver) (*signalPlan, *Response) {
	var p *signalPlan
	for _, sg := range sigs {
		k, digit := dtmfSignal(sg.EventName)
		ms, media, bad := mediaSignalOf(sg)
		if bad != nil {
			return nil, bad
		}
		if !digit && !media {
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
		if media {
			ms.target = target
			p.media = append(p.media, ms)
			continue
		}
		if sg.HasParams {
			return nil, fail(codeEventParam, "signal %s takes no parameters", sg.EventName)
		}
		p.keys[target] += string(k)
	}
	return p, nil
}

// mediaSignalOf recognizes A/ann(url) and the G tones (with an optional
// to=<ms> timeout); bad is a parameter error (538).
func mediaSignalOf(sg RequestedEvent) (ms mediaSignal, ok bool, bad *Response) {
	name := strings.ToLower(sg.Name)
	switch {
	case sg.Pkg == "A" && name == "ann":
		file, ok := annFile(sg)
		if !ok {
			return ms, false, fail(codeEventParam, "signal %s: want A/ann(file:NAME.wav), a file under media.dir", sg.EventName)
		}
		return mediaSignal{name: "A/ann", file: file, to: time.Hour}, true, nil
	case sg.Pkg == "G":
		g, known := genericTones[name]
		if !known {
			return ms, false, nil
		}
		ms = mediaSignal{name: "G/" + name, to: g.to}
		if sg.HasParams {
			v, found := strings.CutPrefix(strings.TrimSpace(sg.Params), "to=")
			n, err := strconv.Atoi(v)
			if !found || err != nil || n <= 0 || n > 3600000 || g.to == 0 {
				return ms, false, fail(codeEventParam, "signal %s: the only parameter is to=<ms> on a time-out signal", sg.EventName)
			}
			ms.to = time.Duration(n) * time.Millisecond
		}
		return ms, true, nil
	}
	return ms, false, nil
}

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
	for _, m := range p.media {
		connID, confID := m.target, ""
		switch m.target {
		case "":
			confID = ep.confID
		case "$":
			connID = newConn
		}
		state := sigState + m.name + "|" + ep.local()
		var op string
		var err error
		if m.file != "" {
			op, err = s.table.Play(connID, confID, session.PlayParams{Prompts: []string{m.file}, TermDigit: -1, State: state})
		} else {
			g := genericTones[m.name[2:]]
			tp := session.ToneParams{Steps: g.steps, Duration: m.to, State: state}
			if m.to == 0 {
				tp.Repeat = 3 // a brief signal: three bursts (G/cf)
			}
			op, err = s.table.PlayTone(connID, confID, tp)
		}
		if err != nil {
			if m.file != "" && s.failedAnnouncement(ep.local(), connID, m.name) {
				s.log.WithError(err).WithField("endpoint", ep.local()).Info("announcement failed: A/of notified")
				continue
			}
			code := codeCannotSignal
			if m.file != "" {
				code = codeCannotAnnounce
			}
			return fail(code, "signal %s: %s", m.name, err)
		}
		if m.to == 0 {
			continue // brief: nothing stops it, nothing reports its end
		}
		s.mu.Lock()
		if st := s.endpoints[ep.local()]; st != nil {
			if ev, ended := st.annEarly[op]; ended { // its NTFY follows the response
				delete(st.annEarly, op)
				s.afterReply = append(s.afterReply, s.observe(ep.local(), st, ev)...)
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

// failedAnnouncement reports an announcement that could not start as
// A/of(A/ann) when the endpoint's request asks for A/of (its NTFY follows
// the response); false when nobody asked, and the command fails instead.
func (s *Server) failedAnnouncement(key, connID, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.endpoints[key]
	ev := digitEvent{conn: connID, sym: symAOF, sig: name}
	if st == nil || !st.active || matchEvent(st.events, ev) == nil {
		return false
	}
	s.afterReply = append(s.afterReply, s.observe(key, st, ev)...)
	return true
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
