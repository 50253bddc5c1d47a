package mgcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/session"
)

var releaseByDLCX = session.Release{By: session.FrontMGCP, Reason: "DLCX"}

// media is what a CRCX or MDCX asks for, read from M:, L: and the SDP.
type media struct {
	mode     session.Mode // "" = not given
	remote   *remoteSDP   // nil = no SDP
	codecs   []string     // candidates in preference order; nil = not negotiated
	ptime    time.Duration
	notify   netip.AddrPort
	lcoGiven bool
}

// readMedia parses M:, L: and the SDP; a non-nil response is the error.
func (s *Server) readMedia(c *Command, ep endpoint) (media, *Response) {
	var m media
	if v, ok := c.Params.Get("M"); ok {
		mode, err := session.ParseMode(v)
		if err != nil || v == "" {
			return m, fail(codeBadMode, "mode %q", clip(v))
		}
		if !ep.allowsMode(mode) {
			return m, fail(codeBadMode, "mode %s on %s", mode, ep.local())
		}
		m.mode = mode
	}
	l, lOK := c.Params.Get("L")
	opts, err := parseLCO(l)
	if err != nil {
		var le *lcoError
		errors.As(err, &le)
		return m, fail(le.code, "%v", err)
	}
	m.lcoGiven = lOK
	if c.SDP != "" {
		r, err := parseSDP(c.SDP)
		if err != nil {
			var se *sdpError
			errors.As(err, &se)
			return m, fail(se.code, "%v", err)
		}
		m.remote = r
	}
	switch {
	case len(opts.Codecs) > 0 && m.remote != nil:
		for _, name := range opts.Codecs {
			if _, ok := m.remote.PT[name]; ok {
				m.codecs = append(m.codecs, name)
			}
		}
		if len(m.codecs) == 0 {
			return m, fail(codeCodec, "no codec of L: a:%s in the remote descriptor %v", strings.Join(opts.Codecs, ";"), m.remote.Codecs)
		}
	case len(opts.Codecs) > 0:
		m.codecs = opts.Codecs
	case m.remote != nil:
		if len(m.remote.Codecs) == 0 {
			return m, fail(codeCodec, "no codec in the remote descriptor")
		}
		m.codecs = m.remote.Codecs
	}
	var sdpPtime time.Duration
	if m.remote != nil {
		sdpPtime = m.remote.Ptime
	}
	if m.ptime, err = choosePtime(opts, sdpPtime); err != nil {
		var le *lcoError
		errors.As(err, &le)
		return m, fail(le.code, "%v", err)
	}
	if n, ok := c.Params.Get("N"); ok {
		m.notify = parseNotifiedEntity(n)
	}
	return m, nil
}

// parseNotifiedEntity reads `ca@[127.0.0.1]:2727` or `ca@127.0.0.1:2727`;
// names that would need DNS give the zero address (not used).
func parseNotifiedEntity(v string) netip.AddrPort {
	if at := strings.LastIndexByte(v, '@'); at >= 0 {
		v = v[at+1:]
	}
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap
	}
	if h, p, err := net.SplitHostPort(v); err == nil { // "[192.0.2.1]:2727" (RFC 3435 §3.2.1.3)
		a, aerr := netip.ParseAddr(h)
		port, perr := strconv.ParseUint(p, 10, 16)
		if aerr == nil && perr == nil && port != 0 {
			return netip.AddrPortFrom(a.Unmap(), uint16(port))
		}
	}
	host := strings.Trim(v, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 2727)
	}
	return netip.AddrPort{}
}

func (m media) params() session.ConnectionParams {
	p := session.ConnectionParams{Mode: m.mode, Ptime: m.ptime}
	if m.remote != nil {
		p.Remote = m.remote.Addr
		p.TelephoneEvent = m.remote.Events
	}
	if len(m.codecs) > 0 {
		p.Codec = m.codecs[0]
	}
	return p
}

// answer is the 200 with our SDP for a created or modified connection.
func (s *Server) answer(conn session.Connection, m media, extra ...Param) *Response {
	pt := uint8(96)
	if m.remote != nil {
		if p, ok := m.remote.PT[conn.Codec]; ok {
			pt = p
		} else if p, ok := staticPT[conn.Codec]; ok {
			pt = p
		}
	} else if p, ok := staticPT[conn.Codec]; ok {
		pt = p
	}
	return &Response{Code: codeOK, Params: append(Params{{"I", conn.ID}}, extra...),
		SDP: localSDP(conn.ID, conn.Local, conn.Codec, pt, conn.Ptime, string(conn.Mode))}
}

// crcx creates a connection on a conference or bridge endpoint.
func (s *Server) crcx(c *Command, ep endpoint, src netip.AddrPort) *Response {
	switch {
	case ep.kind == nil, ep.all && !ep.kind.starAny:
		return fail(codeUnknownEndpoint, "CRCX on %s", ep.local())
	}
	callID := c.Params.Value("C")
	if callID == "" {
		return fail(codeBadCallID, "CRCX without C:")
	}
	if _, ok := c.Params.Get("M"); !ok {
		return fail(codeBadMode, "CRCX without M:")
	}
	m, bad := s.readMedia(c, ep)
	if bad != nil {
		return bad
	}
	nr, bad := s.readRequest(c, s.resolverFor(ep, true), false)
	if bad != nil {
		return bad
	}
	if m.remote == nil && m.mode == session.ModeSendOnly {
		return fail(codeMissingSDP, "sendonly without a remote descriptor")
	}
	p := m.params()
	p.Owner, p.CallID = session.FrontMGCP, callID
	if !ep.wild() {
		p.Tag = ep.local() // the endpoint, for whoever lists connections
	}
	conn, err := s.table.CreateConnection(p)
	if err != nil {
		return fail(sessionCode("CRCX", err), "create connection: %v", err)
	}
	conf, err := s.place(conn.ID, ep)
	// A mixer takes only some codecs: try the call agent's next choices.
	for i := 1; errors.Is(err, session.ErrCodecUnsupported) && i < len(m.codecs); i++ {
		if conn, err = s.table.ModifyConnection(conn.ID, session.ConnectionParams{Codec: m.codecs[i]}); err == nil {
			conf, err = s.place(conn.ID, ep)
		}
	}
	if err != nil {
		if _, derr := s.table.DeleteConnection(conn.ID, "", session.Release{By: session.FrontMGCP, Reason: "CRCX failed"}); derr != nil {
			s.log.WithError(derr).WithField("conn_id", conn.ID).Error("releasing the connection of a failed CRCX")
		}
		if errors.Is(err, errNoFreeBridge) {
			return fail(codeNoEndpoint, "%v", err)
		}
		return fail(sessionCode("CRCX", err), "place connection on %s: %v", ep.local(), err)
	}
	name, _ := endpointOf(conf.ID)
	info := connInfo{endpoint: name, notify: m.notify, src: src}
	s.mu.Lock()
	s.conns[conn.ID] = info
	s.saveConnLocked(conn.ID, conn.CallID, info)
	s.mu.Unlock()
	cur, err := s.table.Connection(conn.ID) // the final snapshot, and a check it still exists
	if err != nil {
		s.forget(conn.ID)
		return fail(codeBadConnID, "connection %s released during CRCX", conn.ID)
	}
	conn = cur
	if nr != nil {
		if bad := s.install(name, nr, conn.ID, src); bad != nil {
			if _, derr := s.table.DeleteConnection(conn.ID, "", session.Release{By: session.FrontMGCP, Reason: "CRCX failed"}); derr != nil {
				s.log.WithError(derr).WithField("conn_id", conn.ID).Error("releasing the connection of a failed CRCX")
			}
			return bad
		}
		_, kind := endpointOf(conf.ID)
		if bad := s.playSignals(endpoint{kind: kind, confID: conf.ID}, nr.signals, conn.ID); bad != nil {
			if _, derr := s.table.DeleteConnection(conn.ID, "", session.Release{By: session.FrontMGCP, Reason: "CRCX failed"}); derr != nil {
				s.log.WithError(derr).WithField("conn_id", conn.ID).Error("releasing the connection of a failed CRCX")
			}
			return bad
		}
	}
	var extra []Param
	if ep.wild() {
		extra = append(extra, Param{"Z", name + "@" + s.cfg.Domain})
	}
	return s.answer(conn, m, extra...)
}

var errNoFreeBridge = errors.New("no free rtpbridge endpoint")

// place puts a new connection on its endpoint's conference.
func (s *Server) place(connID string, ep endpoint) (session.Conference, error) {
	switch {
	case ep.kind == kindCnf && ep.any:
		return s.table.CreateConference("", session.KindConference, connID, session.MemberAttrs{})
	case ep.kind == kindBridge && ep.wild():
		for range maxBridge {
			s.mu.Lock()
			s.nextBridge = s.nextBridge%maxBridge + 1
			n := s.nextBridge
			s.mu.Unlock()
			id := bridgeConfID(n)
			if _, err := s.table.Conference(id); err == nil {
				continue
			}
			conf, err := s.table.CreateConference(id, session.KindBridge, connID, session.MemberAttrs{})
			if errors.Is(err, session.ErrConferenceExists) {
				continue
			}
			return conf, err
		}
		return session.Conference{}, errNoFreeBridge
	}
	return s.table.JoinOrCreate(ep.confID, ep.kind.conf, connID, session.MemberAttrs{})
}

// connectionOn finds connection I: on endpoint ep with call C: (if given).
func (s *Server) connectionOn(c *Command, ep endpoint) (session.Connection, *Response) {
	id, ok := c.Params.Get("I")
	if !ok || id == "" {
		return session.Connection{}, fail(codeBadConnID, "%s without I:", c.Verb)
	}
	conn, err := s.table.Connection(id)
	if err != nil {
		return conn, fail(codeBadConnID, "connection %q: %v", clip(id), err)
	}
	if !ep.matches(conn.ConferenceID) {
		return conn, fail(codeBadConnID, "connection %s is not on %s", id, ep.local())
	}
	if call, ok := c.Params.Get("C"); ok && call != conn.CallID {
		return conn, fail(codeBadCallID, "connection %s belongs to another call", id)
	}
	return conn, nil
}

// mdcx changes a connection's mode, remote or codec.
func (s *Server) mdcx(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.wild() || !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "MDCX on %s", ep.local())
	}
	conn, bad := s.connectionOn(c, ep)
	if bad != nil {
		return bad
	}
	m, bad := s.readMedia(c, ep)
	if bad != nil {
		return bad
	}
	nr, bad := s.readRequest(c, s.resolverFor(ep, true), false)
	if bad != nil {
		return bad
	}
	p := m.params()
	if slices.Contains(m.codecs, conn.Codec) {
		p.Codec = "" // keep the current codec while the call agent still offers it
	}
	conn, err := s.table.ModifyConnection(conn.ID, p)
	if err != nil {
		return fail(sessionCode("MDCX", err), "modify connection: %v", err)
	}
	if m.notify.IsValid() {
		s.mu.Lock()
		if info, ok := s.conns[conn.ID]; ok {
			info.notify = m.notify
			s.conns[conn.ID] = info
			s.saveConnLocked(conn.ID, conn.CallID, info)
		}
		s.mu.Unlock()
	}
	if nr != nil {
		if bad := s.install(ep.local(), nr, conn.ID, src); bad != nil {
			return bad
		}
		// The modification stands; digits that cannot be sent are a 513.
		if bad := s.playSignals(ep, nr.signals, conn.ID); bad != nil {
			return bad
		}
	}
	return s.answer(conn, m)
}

// statsParam formats P: from final statistics (RFC 3435 §2.3.8).
func statsParam(st session.Stats) Param {
	lost := st.PacketsLost
	if lost < 0 {
		lost = 0
	}
	return Param{"P", fmt.Sprintf("PS=%d, OS=%d, PR=%d, OR=%d, PL=%d, JI=%d, LA=%d",
		st.PacketsSent, st.OctetsSent, st.PacketsReceived, st.OctetsReceived, lost,
		st.Jitter.Milliseconds(), st.Latency.Milliseconds())}
}

// dlcx deletes connections at every scope through DeleteConnection:
// endpoint+C+I (ConnectionId mode, 250 with statistics), endpoint+C (each
// connection of the call), endpoint (ConferenceId mode) and `*`.
func (s *Server) dlcx(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.any || !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "DLCX on %s", ep.local())
	}
	nr, bad := s.readRequest(c, s.resolverFor(ep, false), false)
	if bad != nil {
		return bad
	}
	if nr != nil && ep.all {
		return fail(codeBadParam, "DLCX on %s with a notification request", ep.local())
	}
	if nr != nil && nr.signals != nil {
		return fail(codeCannotSignal, "DLCX on %s: signals are not sent by a deletion", ep.local())
	}
	resp := s.dlcxDelete(c, ep)
	if nr != nil && resp.Code < 300 && s.endpointExists(ep) {
		if bad := s.install(ep.local(), nr, "", src); bad != nil {
			return bad
		}
	}
	return resp
}

// dlcxDelete is DLCX's deletion at the scope its parameters give.
func (s *Server) dlcxDelete(c *Command, ep endpoint) *Response {
	if _, ok := c.Params.Get("I"); ok {
		conn, bad := s.connectionOn(c, ep)
		if bad != nil {
			return bad
		}
		d, err := s.table.DeleteConnection(conn.ID, "", releaseByDLCX)
		if err != nil {
			return fail(sessionCode("DLCX", err), "delete connection %s: %v", conn.ID, err)
		}
		st := conn.Stats
		if len(d.Connections) > 0 {
			st = d.Connections[0].Stats
		}
		return &Response{Code: codeDeleted, Params: Params{statsParam(st)}}
	}

	var confs []string
	if ep.all {
		for _, cf := range s.table.Conferences() {
			if ep.matches(cf.ID) {
				confs = append(confs, cf.ID)
			}
		}
	} else {
		if _, err := s.table.Conference(ep.confID); err != nil {
			return fail(sessionCode("DLCX", err), "%s has no connections", ep.local())
		}
		confs = []string{ep.confID}
	}

	call, byCall := c.Params.Get("C")
	matched := 0
	for _, id := range confs {
		if !byCall {
			if _, err := s.table.DeleteConnection("", id, releaseByDLCX); err != nil && !errors.Is(err, session.ErrUnknownConference) {
				return fail(sessionCode("DLCX", err), "delete conference %s: %v", id, err)
			}
			matched++
			continue
		}
		cf, err := s.table.Conference(id)
		if err != nil {
			continue
		}
		for _, mb := range cf.Members {
			conn, err := s.table.Connection(mb.ConnectionID)
			if err != nil || conn.CallID != call {
				continue
			}
			if _, err := s.table.DeleteConnection(conn.ID, "", releaseByDLCX); err != nil && !errors.Is(err, session.ErrUnknownConnection) {
				return fail(sessionCode("DLCX", err), "delete connection %s: %v", conn.ID, err)
			}
			matched++
		}
	}
	if byCall && matched == 0 && (len(confs) > 0 || !ep.all) {
		return fail(codeBadCallID, "no connection of call %q on %s", clip(call), ep.local())
	}
	return &Response{Code: codeOK}
}

// capabilities is the A: of AUEP.
func capabilities(ep endpoint) string {
	modes := "sendonly;recvonly;sendrecv;inactive;loopback"
	if ep.kind == nil || ep.kind.confrnce {
		modes += ";confrnce"
	}
	return "a:PCMU;PCMA, p:10-200, e:off, s:off, v:L, m:" + modes
}

// auep audits an endpoint: F: A, I, N, X, R, S, D, B, ES; a `*` name lists
// the endpoints in use in Z: lines.
func (s *Server) auep(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.any {
		return fail(codeUnknownEndpoint, "AUEP on %s", ep.local())
	}
	r := &Response{Code: codeOK}
	if ep.all {
		size := 0
		for _, cf := range s.table.Conferences() {
			if ep.matches(cf.ID) {
				name, _ := endpointOf(cf.ID)
				z := Param{"Z", name + "@" + s.cfg.Domain}
				if size += len(z.Name) + len(z.Value) + 4; size > maxDatagram {
					return fail(codeTooLarge, "AUEP %s: more endpoints than fit in %d octets", ep.local(), maxDatagram)
				}
				r.Params = append(r.Params, z)
			}
		}
		return r
	}
	if !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "AUEP on %s: no such conference", ep.local())
	}
	var state struct{ notify, requestID, events, digitMap, detect, observed, quarantine, bearer string }
	s.mu.Lock()
	if st := s.endpoints[ep.local()]; st != nil {
		state.notify, state.bearer = st.notify, st.bearer
		state.requestID, state.events, state.digitMap, state.detect = st.audit("X"), st.audit("R"), st.audit("D"), st.audit("T")
		state.observed, state.quarantine = st.audit("O"), st.audit("Q")
	}
	s.mu.Unlock()
	for _, item := range strings.Split(c.Params.Value("F"), ",") {
		switch item = strings.ToUpper(strings.TrimSpace(item)); item {
		case "":
		case "A":
			r.Params = append(r.Params, Param{"A", capabilities(ep)})
		case "I":
			if cf, err := s.table.Conference(ep.confID); err == nil && len(cf.Members) > 0 {
				ids := make([]string, len(cf.Members))
				for i, mb := range cf.Members {
					ids[i] = mb.ConnectionID
				}
				r.Params = append(r.Params, Param{"I", strings.Join(ids, ", ")})
			}
		case "N":
			n := state.notify
			if n == "" && s.notify.IsValid() {
				n = "ca@" + bracket(s.notify)
			}
			r.Params = append(r.Params, Param{"N", n})
		case "X":
			r.Params = append(r.Params, Param{"X", state.requestID})
		case "R":
			r.Params = append(r.Params, Param{"R", state.events})
		case "S": // no signal is ever active: signal requests are refused (513)
			r.Params = append(r.Params, Param{"S", ""})
		case "D":
			r.Params = append(r.Params, Param{"D", state.digitMap})
		case "B":
			r.Params = append(r.Params, Param{"B", state.bearer})
		case "T":
			r.Params = append(r.Params, Param{"T", state.detect})
		case "O":
			r.Params = append(r.Params, Param{"O", state.observed})
		case "Q":
			r.Params = append(r.Params, Param{"Q", state.quarantine})
		case "ES", "RM", "RD", "E", "VS":
			r.Params = append(r.Params, Param{item, ""})
		default:
			return fail(codeBadParam, "F: %q", clip(item))
		}
	}
	return r
}

func bracket(ap netip.AddrPort) string {
	return "[" + ap.Addr().String() + "]:" + strconv.Itoa(int(ap.Port()))
}

// aucx audits a connection: F: C, N, L, M, LC, RC, P.
func (s *Server) aucx(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.wild() || !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "AUCX on %s", ep.local())
	}
	conn, bad := s.connectionOn(c, ep)
	if bad != nil {
		return bad
	}
	r := &Response{Code: codeOK}
	var lc, rc string
	for _, item := range strings.Split(c.Params.Value("F"), ",") {
		switch item = strings.ToUpper(strings.TrimSpace(item)); item {
		case "":
		case "C":
			r.Params = append(r.Params, Param{"C", conn.CallID})
		case "N":
			s.mu.Lock()
			info := s.conns[conn.ID]
			s.mu.Unlock()
			n := ""
			if ap := s.notifyFor(info); ap.IsValid() {
				n = "ca@" + bracket(ap)
			}
			r.Params = append(r.Params, Param{"N", n})
		case "L":
			r.Params = append(r.Params, Param{"L", fmt.Sprintf("p:%d, a:%s", conn.Ptime.Milliseconds(), conn.Codec)})
		case "M":
			r.Params = append(r.Params, Param{"M", string(conn.Mode)})
		case "P":
			r.Params = append(r.Params, statsParam(conn.Stats))
		case "LC":
			pt := staticPT[conn.Codec]
			lc = localSDP(conn.ID, conn.Local, conn.Codec, pt, conn.Ptime, string(conn.Mode))
		case "RC":
			if conn.Remote.IsValid() {
				rc = localSDP(conn.ID, conn.Remote, conn.Codec, staticPT[conn.Codec], conn.Ptime, "")
			}
		default:
			return fail(codeBadParam, "F: %q", clip(item))
		}
	}
	// Both descriptors: local first, then remote, an empty line between.
	switch {
	case lc != "" && rc != "":
		r.SDP = lc + "\r\n" + rc
	case lc != "":
		r.SDP = lc
	case rc != "":
		r.SDP = rc
	}
	return r
}

// storeEndpoint records what RQNT and EPCF set for an endpoint.
func (s *Server) storeEndpoint(ep endpoint, set func(*endpointState)) *Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ep.local()
	st := s.endpoints[key]
	if st == nil {
		if len(s.endpoints) >= maxEndpointStates {
			return fail(codeNoResourcesNow, "endpoint state table full")
		}
		st = &endpointState{}
		s.endpoints[key] = st
	}
	set(st)
	return &Response{Code: codeOK}
}

// rqnt installs a notification request (notify.go): R:, S:, D:, Q:, N:, X:.
func (s *Server) rqnt(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.wild() {
		return fail(codeUnknownEndpoint, "RQNT on %s", ep.local())
	}
	if !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "RQNT on %s: no such conference", ep.local())
	}
	nr, bad := s.readRequest(c, s.resolverFor(ep, false), true)
	if bad != nil {
		return bad
	}
	if bad := s.install(ep.local(), nr, "", src); bad != nil {
		return bad
	}
	if !s.endpointExists(ep) { // released meanwhile: its request goes with it
		s.dropEndpoint(ep.local())
		return fail(codeUnknownEndpoint, "RQNT on %s: released meanwhile", ep.local())
	}
	if bad := s.playSignals(ep, nr.signals, ""); bad != nil {
		return bad
	}
	return &Response{Code: codeOK}
}

// epcf accepts and stores an endpoint configuration (B: bearer information).
func (s *Server) epcf(c *Command, ep endpoint, src netip.AddrPort) *Response {
	if ep.any || !s.endpointExists(ep) {
		return fail(codeUnknownEndpoint, "EPCF on %s", ep.local())
	}
	b, ok := c.Params.Get("B")
	if ok {
		enc, val, _ := strings.Cut(strings.TrimSpace(b), ":")
		if !strings.EqualFold(strings.TrimSpace(enc), "e") ||
			(!strings.EqualFold(strings.TrimSpace(val), "mu") && !strings.EqualFold(strings.TrimSpace(val), "A")) {
			return fail(codeUnsupportedLCO, "bearer %q", clip(b))
		}
	}
	return s.storeEndpoint(ep, func(st *endpointState) {
		if ok {
			st.bearer = b
		}
	})
}

// notifyFor is where a connection's release is announced.
func (s *Server) notifyFor(info connInfo) netip.AddrPort {
	if info.notify.IsValid() {
		return info.notify
	}
	s.mu.Lock()
	st := s.endpoints[info.endpoint]
	s.mu.Unlock()
	if st != nil {
		if ap := parseNotifiedEntity(st.notify); ap.IsValid() {
			return ap
		}
	}
	if s.notify.IsValid() {
		return s.notify
	}
	return info.src
}

func (s *Server) forget(connID string) (connInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.conns[connID]
	delete(s.conns, connID)
	if ok {
		s.unsave(StateConn, connID)
	}
	return info, ok
}

// onEvent tells the call agent when one of its connections was released by
// someone else (SIP, HTTP, a media timeout, shutdown): a gateway-initiated
// DLCX with E: reason and P: statistics. It runs on the releaser's
// goroutine and only sends a datagram.
func (s *Server) onEvent(ev session.Event) {
	switch ev.Type {
	case session.DigitReceived:
		s.queueDigit(ev)
		return
	case session.OperationComplete:
		if ev.Op != nil && strings.HasPrefix(ev.Op.State, sigState) {
			s.queueDigit(ev) // in order with the digits
		}
		return
	case session.ConferenceReleased:
		if name, _ := endpointOf(ev.ConferenceID); name != "" {
			s.dropEndpoint(name) // its notification request ends with it
		}
		return
	case session.ConnectionReleased:
	default:
		return
	}
	if ev.Connection.Owner != session.FrontMGCP {
		return
	}
	select { // digitLoop forgets a digit under way on it (best effort)
	case s.digitCh <- session.Event{Type: session.ConnectionReleased, Connection: session.Connection{ID: ev.Connection.ID}}:
	default:
	}
	info, ok := s.forget(ev.Connection.ID)
	if ev.By == session.FrontMGCP {
		return
	}
	if !ok {
		info.endpoint, _ = endpointOf(ev.ConferenceID)
		if info.endpoint == "" {
			info.endpoint = ev.Connection.Tag
		}
	}
	dst := s.notifyFor(info)
	if !dst.IsValid() || info.endpoint == "" {
		return
	}
	code, text := reasonCode(ev.Release)
	s.log.WithFields(map[string]any{"conn_id": ev.Connection.ID, "call_id": ev.Connection.CallID,
		"endpoint": info.endpoint, "by": ev.By, "reason": ev.Reason}).Info("MGCP connection released by the gateway: sending DLCX")
	s.sendCommand(&Command{Verb: "DLCX", Endpoint: info.endpoint + "@" + s.cfg.Domain, Version: "1.0",
		Params: Params{
			{"C", ev.Connection.CallID},
			{"I", ev.Connection.ID},
			{"E", fmt.Sprintf("%d %s", code, text)},
			statsParam(ev.Connection.Stats),
		}}, dst)
}
