package mgcp

import (
	"net/netip"
	"strings"
	"time"

	"github.com/mediagw/mediagw/session"
)

// Notification requests at work (RFC 3435 §2.3.3, §4.4): an endpoint's
// current request (from RQNT, or embedded in CRCX/MDCX/DLCX) lists the
// DTMF events to detect on its connections and what to do with each; the
// digits come from the session table's DigitReceived events; a NTFY with
// X: and O: goes to the notified entity and is retransmitted until the
// call agent answers. One NTFY per endpoint is outstanding at a time
// (later ones wait their turn), and everything ends with the endpoint.

// reqEvent is one validated item of R:.
type reqEvent struct {
	set     symSet // DTMF symbols (digits, T) it covers
	conn    string // "" or "*": any connection of the endpoint; else that ConnectionId
	qualify bool   // observed events name the connection (@id or @* requested)
	action  byte   // 'N' notify, 'A' accumulate, 'D' digit map, 'I' ignore
	keep    bool   // K: keep signals active (there are none to keep)
	emb     *notifyEmbedded
}

// notifyEmbedded is a validated E(...).
type notifyEmbedded struct {
	events []reqEvent
	rText  string
	hasR   bool
	dm     *DigitMap
	dmText string
}

// notifyRequest is a validated notification request, ready to install.
type notifyRequest struct {
	requestID string
	events    []reqEvent
	rText     string
	dm        *DigitMap // nil: keep the endpoint's
	dmText    string
	q         Quarantine
	detect    []reqEvent // T: (DetectEvents); nil with hasT false = R:'s events
	detText   string
	hasT      bool
	notify    string // N: as sent; "" = keep the endpoint's
	notifyDst netip.AddrPort
	signals   *signalPlan // S: digits to send once the request is in place (signals.go)
	raw       Params      // the parameters that make the request, as sent (persist.go)
}

// digitEvent is one detected symbol on a connection.
type digitEvent struct {
	conn string
	sym  int
	sig  string // symAOC..symGOF: the signal that ended ("A/ann", "G/rt")
}

// Timer kinds of an endpoint's digit collection.
const (
	timerNone = iota
	timerStart
	timerShort
	timerLong
)

// maxQuarantine bounds the events kept between a notification and the
// next request; maxQueued the notifications waiting behind one in flight.
const (
	maxQuarantine = 64
	maxQueued     = 16
	maxObserved   = 64
)

// endpointState is what RQNT, EPCF and embedded requests set for an
// endpoint, and the detection running for it. Guarded by Server.mu.
type endpointState struct {
	notify    string         // N: as sent
	notifyDst netip.AddrPort // N: resolved; zero = configured entity or src
	src       netip.AddrPort // the call agent of the last request
	requestID string         // X:
	events    []reqEvent
	rText     string // R: as AUEP reports it
	dm        *DigitMap
	dmText    string // D:
	bearer    string // B: (EPCF)
	raw       Params // the current request as sent, and what "$" stood for (persist.go)
	newConn   string

	active     bool // detecting for the current request
	q          Quarantine
	observed   []string // O: items not yet notified
	dial       dmState  // digit-map collection; nil when none runs
	timer      *time.Timer
	timerKind  int
	gen        uint64 // bumped whenever timers or the request change
	quarantine []digitEvent
	detect     []reqEvent // T: what is detected (quarantined) between requests
	detText    string
	hasDetect  bool
	inflight   *ntfyTx
	queue      []*Command
	anns       []string              // OperationIds of the A/ann plays running (signals.go)
	annEarly   map[string]digitEvent // signals that ended before they were registered: their event
}

// install makes nr the endpoint's current request: the old one ends, its
// unsent notifications and accumulated events are dropped, quarantined
// events are processed (or discarded, Q: discard). newConn resolves "$".
func (s *Server) install(key string, nr *notifyRequest, newConn string, src netip.AddrPort) *Response {
	s.mu.Lock()
	st := s.endpoints[key]
	var dm *DigitMap
	if nr.dm != nil {
		dm = nr.dm
	} else if st != nil {
		dm = st.dm
	}
	if usesDigitMap(nr.events) && dm == nil {
		s.mu.Unlock()
		return fail(codeNoDigitMap, "action D without a digit map")
	}
	if st == nil {
		if len(s.endpoints) >= maxEndpointStates {
			s.mu.Unlock()
			return fail(codeNoResourcesNow, "endpoint state table full")
		}
		st = &endpointState{}
		s.endpoints[key] = st
	}
	if nr.dm != nil {
		st.dm, st.dmText = nr.dm, nr.dmText
	}
	if nr.requestID == "" { // a D: alone
		s.mu.Unlock()
		return nil
	}
	if nr.notify != "" {
		st.notify, st.notifyDst = nr.notify, nr.notifyDst
	}
	st.src = src
	for i := range nr.events {
		resolveNew(&nr.events[i], newConn)
	}
	st.requestID, st.events, st.rText, st.q = nr.requestID, nr.events, nr.rText, nr.q
	st.raw, st.newConn = nr.raw, newConn
	if nr.hasT {
		for i := range nr.detect {
			resolveNew(&nr.detect[i], newConn)
		}
		st.detect, st.detText, st.hasDetect = nr.detect, nr.detText, true
	}
	st.queue = nil
	st.observed = nil
	st.active = true
	s.saveEndpointLocked(key, st)
	s.annStops = append(s.annStops, st.anns...) // a new request ends the signals of the old
	st.anns, st.annEarly = nil, nil
	held := st.quarantine
	st.quarantine = nil
	s.resetDial(st)
	s.armStart(key, st)
	if !nr.q.Discard { // their NTFY leaves after the response to this command
		for _, ev := range held {
			s.afterReply = append(s.afterReply, s.observe(key, st, ev)...)
		}
	}
	stops := s.takeAnnStops()
	s.mu.Unlock()
	s.stopAnns(stops)
	return nil
}

// takeAfterReply returns what install left to send once the command's
// response is out.
func (s *Server) takeAfterReply() []outDatagram {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.afterReply
	s.afterReply = nil
	return out
}

// resolveNew replaces @$ with the connection the command created or modified.
func resolveNew(e *reqEvent, newConn string) {
	if e.conn == "$" {
		e.conn = newConn
	}
	if e.emb != nil {
		for i := range e.emb.events {
			resolveNew(&e.emb.events[i], newConn)
		}
	}
}

// resetDial ends a digit collection and its timer. Caller holds mu.
func (s *Server) resetDial(st *endpointState) {
	st.dial = nil
	s.stopTimer(st)
}

func (s *Server) stopTimer(st *endpointState) {
	st.gen++
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	st.timerKind = timerNone
}

// armStart starts the start timer when T is requested (with N or D) and
// nothing was dialled yet. Caller holds mu.
func (s *Server) armStart(key string, st *endpointState) {
	for _, e := range st.events {
		if e.set.has(symT) && (e.action == 'N' || e.action == 'D') {
			s.armTimer(key, st, timerStart, s.digitTimers.start)
			return
		}
	}
}

func (s *Server) armTimer(key string, st *endpointState, kind int, d time.Duration) {
	s.stopTimer(st)
	if s.notifyClosed {
		return
	}
	gen := st.gen
	st.timerKind = kind
	st.timer = time.AfterFunc(d, func() { s.timerFired(key, gen) })
}

// timerFired is the digit timer T expiring: the start timer reports D/T
// alone; the short and long timers end the collection, with D/T unless
// the digits already match without it.
func (s *Server) timerFired(key string, gen uint64) {
	s.mu.Lock()
	st := s.endpoints[key]
	if st == nil || st.gen != gen || !st.active {
		s.mu.Unlock()
		return
	}
	kind := st.timerKind
	st.timer, st.timerKind = nil, timerNone
	if kind == timerStart || st.dial == nil || !st.dm.complete(st.dial) {
		st.observed = append(st.observed, "D/T")
	}
	send := s.notifyNow(key, st, false)
	s.mu.Unlock()
	s.sendAll(send)
}

// outDatagram is a datagram to send once the lock is dropped.
type outDatagram struct {
	data []byte
	dst  netip.AddrPort
}

func (s *Server) sendAll(out []outDatagram) {
	for _, o := range out {
		s.write(o.data, o.dst)
	}
}

// observe runs one detected symbol through the endpoint's request. Caller
// holds mu; the datagrams returned are sent after it is dropped.
func (s *Server) observe(key string, st *endpointState, ev digitEvent) []outDatagram {
	if !st.active {
		// Quarantine: the events of T: (DetectEvents), or when none was
		// given those of the request that just ended, are kept for the
		// next request; others are not detected.
		list := st.events
		if st.hasDetect {
			list = st.detect
		}
		if matchEvent(list, ev) != nil && len(st.quarantine) < maxQuarantine {
			st.quarantine = append(st.quarantine, ev)
		}
		return nil
	}
	re := matchEvent(st.events, ev)
	if re == nil {
		return nil // not requested: ignored
	}
	if re.action == 'I' {
		return nil
	}
	if !re.keep { // time-out signals stop when a requested event comes (no K)
		s.annStops = append(s.annStops, st.anns...)
		st.anns = nil
	}
	var name string
	switch ev.sym {
	case symAOC, symGOC:
		name = ev.sig[:2] + "oc(" + ev.sig + ")"
	case symAOF, symGOF:
		name = ev.sig[:2] + "of(" + ev.sig + ")"
	default:
		if st.timerKind == timerStart {
			s.stopTimer(st) // the first digit
		}
		name = "D/" + string(symChar(ev.sym))
	}
	if re.qualify {
		name += "@" + ev.conn
	}
	if len(st.observed) < maxObserved {
		st.observed = append(st.observed, name)
	}
	emb := re.emb
	action := re.action
	timers := re.set.has(symT)
	if emb != nil { // the embedded request replaces the current one now
		if emb.hasR {
			st.events, st.rText = emb.events, emb.rText
		}
		if emb.dm != nil {
			st.dm, st.dmText = emb.dm, emb.dmText
		}
		if action != 'D' {
			s.resetDial(st)
		}
	}
	switch action {
	case 'N':
		return s.notifyNow(key, st, emb != nil)
	case 'A':
		return nil
	}
	// 'D': collect by the digit map (an announcement's end is no digit).
	if st.dm == nil || ev.sym > symT {
		return s.notifyNow(key, st, emb != nil)
	}
	if st.dial == nil {
		st.dial = st.dm.start()
	}
	st.dial = st.dm.step(st.dial, ev.sym)
	switch st.dm.classify(st.dial) {
	case dmMatch, dmMismatch:
		return s.notifyNow(key, st, emb != nil)
	case dmPartialShort:
		if timers {
			s.armTimer(key, st, timerShort, s.digitTimers.short)
			return nil
		}
		if st.dm.complete(st.dial) { // no timer to wait for a longer match
			return s.notifyNow(key, st, emb != nil)
		}
	case dmNeedT:
		if timers {
			s.armTimer(key, st, timerShort, s.digitTimers.short)
			return nil
		}
		return s.notifyNow(key, st, emb != nil) // T never comes: nothing can match
	case dmPartialLong:
		if timers {
			s.armTimer(key, st, timerLong, s.digitTimers.long)
		}
	}
	return nil
}

// matchEvent is the first requested event that covers ev.
func matchEvent(list []reqEvent, ev digitEvent) *reqEvent {
	for i := range list {
		e := &list[i]
		if e.set.has(ev.sym) && (e.conn == "" || e.conn == "*" || e.conn == ev.conn) {
			return e
		}
	}
	return nil
}

// notifyNow turns the observed events into a NTFY. In step mode (the
// default) the request then ends and later events wait in quarantine,
// unless an embedded request was just installed. Caller holds mu.
func (s *Server) notifyNow(key string, st *endpointState, embedded bool) []outDatagram {
	params := Params{}
	if st.notify != "" {
		params = append(params, Param{"N", st.notify})
	}
	params = append(params, Param{"X", st.requestID}, Param{"O", strings.Join(st.observed, ",")})
	st.observed = nil
	s.resetDial(st)
	if !st.q.Loop && !embedded {
		st.active = false
		s.saveEndpointLocked(key, st)
	}
	cmd := &Command{Verb: "NTFY", Endpoint: key + "@" + s.cfg.Domain, Version: "1.0", Params: params}
	if st.inflight != nil {
		if len(st.queue) >= maxQueued {
			s.met.notify.WithLabelValues("error").Inc()
			if s.limit.allow() {
				s.log.WithField("endpoint", key).Warn("NTFY dropped: the call agent has not answered the ones before it")
			}
			return nil
		}
		st.queue = append(st.queue, cmd)
		return nil
	}
	return s.startNtfy(key, st, cmd)
}

// notifyDst is where an endpoint's NTFY goes: its N:, the configured
// notified entity, or the call agent of the request.
func (s *Server) notifyDst(st *endpointState) netip.AddrPort {
	switch {
	case st.notifyDst.IsValid():
		return st.notifyDst
	case s.notify.IsValid():
		return s.notify
	}
	return st.src
}

// dropEndpoint forgets an endpoint's request when the endpoint ends; a
// NTFY already in flight still completes.
func (s *Server) dropEndpoint(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.endpoints[key]; st != nil {
		s.stopTimer(st)
		delete(s.endpoints, key)
		s.unsave(StateEndpoint, key)
	}
}

// digitLoop feeds DigitReceived events to the endpoints' requests, off the
// media goroutines that announce them. A digit is reported once: at its
// start, or at its end when the start was not seen.
func (s *Server) digitLoop(done <-chan struct{}) {
	started := map[string]int{} // connection -> symbol+1 of the digit under way
	for {
		var ev session.Event
		select {
		case ev = <-s.digitCh:
		case <-done:
			return
		}
		if ev.Type == session.ConnectionReleased {
			delete(started, ev.Connection.ID)
			continue
		}
		if ev.Type == session.OperationComplete {
			s.annEnded(ev.Op)
			continue
		}
		id, sym := ev.Connection.ID, int(ev.Digit)
		if sym > 15 {
			continue
		}
		if ev.DigitEnd {
			was := started[id]
			delete(started, id)
			if was == sym+1 {
				continue // reported at its start
			}
		} else {
			started[id] = sym + 1
		}
		s.mu.Lock()
		info, ok := s.conns[id]
		st := s.endpoints[info.endpoint]
		var send []outDatagram
		if ok && st != nil {
			send = s.observe(info.endpoint, st, digitEvent{conn: id, sym: sym})
		}
		stops := s.takeAnnStops()
		s.mu.Unlock()
		s.sendAll(send)
		s.stopAnns(stops)
	}
}

// annEnded turns the end of a time-out signal (A/ann, G/rt, G/it) into
// its package's oc (played out) or of (failed) on its endpoint; one
// stopped (by a request, an event, a release) reports nothing.
func (s *Server) annEnded(op *session.OperationResult) {
	rest, ok := strings.CutPrefix(op.State, sigState)
	if !ok {
		return
	}
	sig, key, ok := strings.Cut(rest, "|")
	if !ok || len(sig) < 3 {
		return
	}
	ev := digitEvent{conn: op.ConnectionID, sym: -1, sig: sig}
	switch {
	case op.ResultCode != 0:
		ev.sym = symAOF
	case op.TerminationCondition == session.TermEOD:
		ev.sym = symAOC
	}
	if ev.sym >= 0 && sig[0] == 'G' {
		ev.sym += symGOC - symAOC
	}
	s.mu.Lock()
	st := s.endpoints[key]
	var send []outDatagram
	if st != nil {
		running := false
		for i, id := range st.anns {
			if id == op.OperationID {
				st.anns = append(st.anns[:i], st.anns[i+1:]...)
				running = true
				break
			}
		}
		switch {
		case running && ev.sym >= 0:
			send = s.observe(key, st, ev)
		case ev.sym >= 0 && len(st.annEarly) < maxQueued: // ended before playSignals registered it
			if st.annEarly == nil {
				st.annEarly = map[string]digitEvent{}
			}
			st.annEarly[op.OperationID] = ev
		}
	}
	stops := s.takeAnnStops()
	s.mu.Unlock()
	s.sendAll(send)
	s.stopAnns(stops)
}

// queueDigit hands an event to digitLoop without blocking the media path;
// a full queue drops it (counted, logged at a limited rate).
func (s *Server) queueDigit(ev session.Event) {
	select {
	case s.digitCh <- ev:
	default:
		s.met.dropped.WithLabelValues("digit_queue_full").Inc()
		if s.limit.allow() {
			s.log.WithField("conn_id", ev.Connection.ID).Warn("digit event dropped: MGCP notification queue full")
		}
	}
}

// endpointExists reports whether a specific endpoint exists now:
// rtpbridge/<n> always does (a fixed set, as in osmo-mgw); cnf/<id> while
// conference <id> does.
func (s *Server) endpointExists(ep endpoint) bool {
	if ep.wild() || ep.kind != kindCnf {
		return true
	}
	_, err := s.table.Conference(ep.confID)
	return err == nil
}

// auditRequest is what AUEP reports of an endpoint's request.
func (st *endpointState) audit(item string) string {
	switch item {
	case "R":
		if st.active {
			return st.rText
		}
	case "X":
		return st.requestID
	case "D":
		return st.dmText
	case "T":
		return st.detText
	case "O": // accumulated, not yet notified
		return strings.Join(st.observed, ",")
	case "Q":
		if st.requestID == "" {
			return ""
		}
		q := "process,step"
		if st.q.Discard {
			q = "discard,step"
		}
		if st.q.Loop {
			q = strings.Replace(q, "step", "loop", 1)
		}
		return q
	}
	return ""
}
