package ng

import (
	"errors"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/session"
)

// commands maps each command this front executes to its handler.
var commands = map[string]func(*Server, *Request) reply{
	"ping":       (*Server).ping,
	"offer":      (*Server).offer,
	"answer":     (*Server).answer,
	"delete":     (*Server).delete,
	"query":      (*Server).query,
	"list":       (*Server).list,
	"statistics": (*Server).statistics,

	"play media":      (*Server).playMedia, // media.go
	"stop media":      (*Server).stopMedia,
	"play dtmf":       (*Server).playDTMF,
	"start recording": (*Server).startRecording,
	"stop recording":  (*Server).stopRecording,
}

// mediaCommands are rtpengine's media commands: recognized, answered with
// result error and a reason until the media engine serves them here.
var mediaCommands = []string{"block dtmf", "unblock dtmf",
	"pause recording", "block media", "unblock media",
	"silence media", "unsilence media", "start forwarding", "stop forwarding",
	"publish", "subscribe request", "subscribe answer", "unsubscribe", "connect"}

// commandNames interns every known command name (also the metric labels).
var commandNames = func() map[string]string {
	m := map[string]string{}
	for k := range commands {
		m[k] = k
	}
	for _, k := range mediaCommands {
		m[k] = k
	}
	return m
}()

// defaultListLimit is rtpengine's default for `list`.
const defaultListLimit = 32

func (s *Server) dispatch(req *Request) reply {
	if h, ok := commands[req.Command]; ok {
		return h(s, req)
	}
	if _, ok := commandNames[req.Command]; ok {
		return failure(notSupported(req.Command))
	}
	return failure(reasonUnknownCommand)
}

func (s *Server) ping(*Request) reply { return reply{result: resultPong} }

var relFromNG = session.Release{By: session.FrontNG, Reason: "ng delete"}

// relayable reports whether an m= section's media can go through a port pair.
func relayable(m *sdpMedia) bool {
	return m.port != 0 && !strings.HasPrefix(strings.ToUpper(m.proto), "TCP")
}

// remoteOf is where a section's media is sent: its SDP address (or the SIP
// source, with SIP-source-address) and port; zero when it names none.
func remoteOf(doc *sdpDoc, m *sdpMedia, req *Request) netip.AddrPort {
	a := doc.address(m)
	if a.IsValid() && a.IsUnspecified() {
		return netip.AddrPort{}
	}
	if req.SIPSource && !req.TrustAddress && req.ReceivedFrom.IsValid() {
		a = req.ReceivedFrom
	}
	if !a.IsValid() || m.port == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, uint16(m.port))
}

// rewriteFor collects the request's SDP options, noting what cannot be
// honoured in req.Ignored.
func rewriteFor(req *Request, doc *sdpDoc) rewriteOpts {
	o := rewriteOpts{replaceOrigin: req.ReplaceOrigin, noRTCPAttr: req.NoRTCPAttr}
	o.strip = append(append(o.strip, req.CodecStrip...), req.CodecMask...)
	for _, c := range req.CodecOffer {
		found := false
		for i := range doc.media {
			for _, pt := range doc.media[i].formats {
				if strings.EqualFold(doc.media[i].codecName(pt), c) {
					found = true
				}
			}
		}
		if !found {
			req.Ignored = append(req.Ignored, "codec offer "+c+" (not in the SDP: no transcoding)")
		}
	}
	if req.Transport != "" {
		for i := range doc.media {
			if relayable(&doc.media[i]) {
				if t, ok := transportFor(req.Transport, doc.media[i].proto); ok {
					o.transport = t
				} else {
					req.Ignored = append(req.Ignored, "transport-protocol "+req.Transport+" (needs SRTP/DTLS translation)")
				}
				break
			}
		}
	}
	if req.ICE != "" && !req.ICERemove {
		req.Ignored = append(req.Ignored, "ICE="+req.ICE+" (ICE is always removed)")
	}
	return o
}

// codecFor is the first codec a section keeps after stripping.
func codecFor(m *sdpMedia, strip []string) string {
	for _, pt := range m.formats {
		n := m.codecName(pt)
		if stripped(strip, n) || strings.EqualFold(n, "telephone-event") || strings.EqualFold(n, "CN") {
			continue
		}
		return sanitizeCodec(n)
	}
	return m.codec()
}

func (s *Server) offer(req *Request) reply {
	switch {
	case req.CallID == "":
		return failure(reasonNoCallID)
	case req.FromTag == "":
		return failure(reasonNoFromTag)
	case len(req.SDP) == 0:
		return failure(reasonNoSDP)
	}
	doc, err := parseSDP(req.SDP)
	if err != nil {
		return failure(reasonBadSDP + ": " + err.Error())
	}
	opts := rewriteFor(req, doc)
	now := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[req.CallID]
	newCall := c == nil
	if newCall {
		c = &call{id: req.CallID, created: now}
	}
	d, x := c.findDialog(req.FromTag, req.ToTag, req.ViaBranch)
	if d != nil && d.deleteAt != nil {
		// Deleted with a delay: that dialog is over; this offer starts anew.
		if s.releaseDialog(c, d, relFromNG) {
			s.totals.regular++
		}
		d = nil
		if len(c.dialogs) == 0 && !newCall {
			newCall = true
			c = &call{id: req.CallID, created: now}
		}
	}
	newDialog := d == nil
	if newDialog {
		d = &dialog{fromTag: req.FromTag, toTag: req.ToTag, branch: req.ViaBranch, created: now}
		x = sideA
	}
	var created []string // released again if the command fails
	fail := func(err error) reply {
		for _, id := range created {
			_, _ = s.table.DeleteConnection(id, "", relFromNG)
		}
		if newCall && req.LoadLimit && refusesNewCalls(err) {
			// Draining or full: the proxy sets the call up on another relay.
			return reply{result: resultLoadLimit, message: tableReason(err)}
		}
		return failure(tableReason(err))
	}
	type added struct {
		i  int
		st *stream
	}
	var adds []added
	opts.ports = make([]int, len(doc.media))
	for i := range doc.media {
		m := &doc.media[i]
		if !relayable(m) {
			continue
		}
		remote := remoteOf(doc, m, req)
		mode := connMode(doc.direction(m), doc.address(m))
		codec := codecFor(m, opts.strip)
		var st *stream
		if i < len(d.streams) {
			st = d.streams[i]
		}
		if st == nil {
			self, err := s.table.CreateConnection(session.ConnectionParams{Remote: remote, Codec: codec,
				Mode: mode, Owner: session.FrontNG, CallID: req.CallID, Tag: d.tagOf(x), TelephoneEvent: m.telephoneEvent()})
			if err != nil {
				return fail(err)
			}
			created = append(created, self.ID)
			other, err := s.table.CreateConnection(session.ConnectionParams{Codec: codec,
				Owner: session.FrontNG, CallID: req.CallID, Tag: d.tagOf(3 - x)})
			if err != nil {
				return fail(err)
			}
			created = append(created, other.ID)
			if _, err := s.table.Bridge(self.ID, other.ID); err != nil {
				return fail(err)
			}
			st = &stream{index: i + 1, kind: m.kind, proto: m.proto}
			if x == sideA {
				st.a, st.aLocal, st.aAdv, st.aMode = self.ID, self.Local, remote, mode
				st.b, st.bLocal, st.bMode = other.ID, other.Local, session.ModeSendRecv
			} else {
				st.b, st.bLocal, st.bAdv, st.bMode = self.ID, self.Local, remote, mode
				st.a, st.aLocal, st.aMode = other.ID, other.Local, session.ModeSendRecv
			}
			adds = append(adds, added{i, st})
		} else {
			self, _ := st.facing(x)
			p := session.ConnectionParams{Codec: codec, Mode: mode, Remote: st.changed(x, remote), TelephoneEvent: m.telephoneEvent()}
			if _, err := s.table.ModifyConnection(self, p); err != nil {
				return fail(err)
			}
			if x == sideA {
				st.aMode, st.aAdv = mode, keep(st.aAdv, remote)
			} else {
				st.bMode, st.bAdv = mode, keep(st.bAdv, remote)
			}
			st.proto = m.proto
		}
		if x == sideA {
			opts.ports[i] = int(st.bLocal.Port())
			opts.addr = st.bLocal.Addr()
		} else {
			opts.ports[i] = int(st.aLocal.Port())
			opts.addr = st.aLocal.Addr()
		}
	}
	if !opts.addr.IsValid() {
		return failure(reasonNoMedia)
	}
	for _, a := range adds {
		for len(d.streams) <= a.i {
			d.streams = append(d.streams, nil)
		}
		d.streams[a.i] = a.st
	}
	if newDialog {
		c.dialogs = append(c.dialogs, d)
	}
	for _, a := range adds {
		s.byConn[a.st.a] = connRef{c, d}
		s.byConn[a.st.b] = connRef{c, d}
	}
	if newCall {
		s.calls[c.id] = c
		s.nCalls.Add(1)
		s.totals.managed++
	}
	c.lastSignal = now
	s.saveCallLocked(c)
	return reply{result: resultOK, sdp: doc.rewrite(opts)}
}

// changed is remote when it differs from what side x's SDP said before,
// else zero: a repeated answer (the proxy passes on every retransmitted
// 200) must not reset the latched source of a working stream.
func (st *stream) changed(x side, remote netip.AddrPort) netip.AddrPort {
	prev := st.aAdv
	if x == sideB {
		prev = st.bAdv
	}
	if remote == prev {
		return netip.AddrPort{}
	}
	return remote
}

// keep is next when it names an address, else prev.
func keep(prev, next netip.AddrPort) netip.AddrPort {
	if next.IsValid() {
		return next
	}
	return prev
}

func (s *Server) answer(req *Request) reply {
	switch {
	case req.CallID == "":
		return failure(reasonNoCallID)
	case req.FromTag == "":
		return failure(reasonNoFromTag)
	case req.ToTag == "":
		return failure(reasonNoToTag)
	case len(req.SDP) == 0:
		return failure(reasonNoSDP)
	}
	doc, err := parseSDP(req.SDP)
	if err != nil {
		return failure(reasonBadSDP + ": " + err.Error())
	}
	opts := rewriteFor(req, doc)

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[req.CallID]
	if c == nil {
		return failure(reasonUnknownCall)
	}
	d, x := c.findDialog(req.FromTag, req.ToTag, req.ViaBranch)
	if d == nil || d.deleteAt != nil {
		return failure(reasonUnknownTag)
	}
	if d.toTag == "" {
		d.toTag = req.ToTag
	}
	ans := 3 - x // the answering side
	opts.ports = make([]int, len(doc.media))
	for i := range doc.media {
		m := &doc.media[i]
		if i >= len(d.streams) || d.streams[i] == nil || !relayable(m) {
			continue
		}
		st := d.streams[i]
		remote := remoteOf(doc, m, req)
		mode := connMode(doc.direction(m), doc.address(m))
		codec := codecFor(m, opts.strip)
		self, other := st.facing(ans)
		p := session.ConnectionParams{Remote: st.changed(ans, remote), Codec: codec, Mode: mode, TelephoneEvent: m.telephoneEvent()}
		if _, err := s.table.ModifyConnection(self, p); err != nil {
			return failure(tableReason(err))
		}
		// The answer fixes the codec both legs carry.
		if _, err := s.table.ModifyConnection(other, session.ConnectionParams{Codec: codec}); err != nil {
			return failure(tableReason(err))
		}
		if ans == sideA {
			st.aMode, st.aAdv = mode, keep(st.aAdv, remote)
			opts.ports[i], opts.addr = int(st.bLocal.Port()), st.bLocal.Addr()
		} else {
			st.bMode, st.bAdv = mode, keep(st.bAdv, remote)
			opts.ports[i], opts.addr = int(st.aLocal.Port()), st.aLocal.Addr()
		}
	}
	if !opts.addr.IsValid() {
		return failure(reasonNoMedia)
	}
	c.lastSignal = time.Now()
	s.saveCallLocked(c)
	return reply{result: resultOK, sdp: doc.rewrite(opts)}
}

func (s *Server) delete(req *Request) reply {
	if req.CallID == "" {
		return failure(reasonNoCallID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[req.CallID]
	var ds []*dialog
	if c != nil {
		ds = c.matching(req.FromTag, req.ToTag, req.ViaBranch)
	}
	if len(ds) == 0 {
		if req.Fatal {
			return failure(warnNotFound)
		}
		return reply{result: resultOK, warning: warnNotFound}
	}
	stats := s.queryDict(c)
	delay := s.cfg.DeleteDelay
	if req.HasDeleteDelay {
		delay = req.DeleteDelay
	}
	c.lastSignal = time.Now()
	for _, d := range ds {
		if delay <= 0 || s.closed {
			if s.releaseDialog(c, d, relFromNG) {
				s.totals.regular++
			}
			continue
		}
		if d.deleteAt == nil {
			s.armDelete(c, d, delay)
		}
	}
	s.saveCallLocked(c)
	return reply{result: resultOK, extra: stats}
}

// armDelete releases d after delay (a delayed delete). Caller holds mu.
func (s *Server) armDelete(c *call, d *dialog, delay time.Duration) {
	d.deleteDue = time.Now().Add(delay)
	d.deleteAt = time.AfterFunc(max(delay, 0), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.calls[c.id] == c && c.has(d) && s.releaseDialog(c, d, relFromNG) {
			s.totals.regular++
		}
	})
}

func (c *call) has(d *dialog) bool {
	for _, x := range c.dialogs {
		if x == d {
			return true
		}
	}
	return false
}

// releaseDialog ends one dialog: its connections go through the session
// table's DeleteConnection (the one release path), and the call goes when
// its last dialog does. Caller holds mu.
func (s *Server) releaseDialog(c *call, d *dialog, rel session.Release) (callEnded bool) {
	if d.deleteAt != nil {
		d.deleteAt.Stop()
	}
	c.remove(d)
	for _, st := range d.streams {
		if st == nil {
			continue
		}
		for _, id := range []string{st.a, st.b} {
			delete(s.byConn, id)
			if _, err := s.table.DeleteConnection(id, "", rel); err != nil &&
				!errors.Is(err, session.ErrUnknownConnection) && s.limit.allow() {
				s.log.WithError(err).WithFields(map[string]any{"call_id": c.id, "conn_id": id}).Warn("ng release failed")
			}
		}
	}
	if len(c.dialogs) == 0 && s.calls[c.id] == c {
		delete(s.calls, c.id)
		s.nCalls.Add(-1)
		s.totals.callSecs += time.Since(c.created).Seconds()
		s.totals.callCount++
		s.saveCallLocked(c) // removes it
		return true
	}
	s.saveCallLocked(c)
	return false
}

// onEvent hears every release in the table. A connection of ours released
// by someone else (HTTP, MGCP, the media timeout, shutdown) ends its dialog:
// the other leg is released too and the ng state dropped. It runs on the
// releasing goroutine and must not block, so the work goes to a goroutine.
func (s *Server) onEvent(ev session.Event) {
	if ev.Type == session.OperationComplete && ev.Op != nil && strings.HasPrefix(ev.Op.State, "ng-") {
		op := *ev.Op
		go s.mediaEnded(op)
		return
	}
	if ev.Type == session.ConnectionReleased && ev.Connection.Owner == session.FrontNG {
		id := ev.Connection.ID
		go s.forgetMedia(id)
	}
	if ev.Type != session.ConnectionReleased || ev.Connection.Owner != session.FrontNG || ev.By == session.FrontNG {
		return
	}
	id, r := ev.Connection.ID, ev.Release
	go s.released(id, r)
}

func (s *Server) released(connID string, r session.Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.byConn[connID]
	if !ok || !ref.call.has(ref.dialog) {
		return
	}
	if !s.releaseDialog(ref.call, ref.dialog, session.Release{By: session.FrontNG, Code: r.Code,
		Reason: "other leg released by " + string(r.By)}) {
		return
	}
	if r.Code == session.CodeInactivity {
		s.totals.timeout++
	} else {
		s.totals.forced++
	}
}

// flushDelayed runs pending delayed deletes at once (Serve has ended).
func (s *Server) flushDelayed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.calls {
		for _, d := range append([]*dialog(nil), c.dialogs...) {
			if d.deleteAt != nil && s.releaseDialog(c, d, relFromNG) {
				s.totals.regular++
			}
		}
	}
}

func (s *Server) query(req *Request) reply {
	if req.CallID == "" {
		return failure(reasonNoCallID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[req.CallID]
	if c == nil {
		return failure(reasonUnknownCall)
	}
	return reply{result: resultOK, extra: s.queryDict(c)}
}

func endpoint(ap netip.AddrPort) Dict {
	fam := "IPv4"
	if ap.Addr().Is6() {
		fam = "IPv6"
	}
	return Dict{"family": fam, "address": ap.Addr().String(), "port": int(ap.Port())}
}

func modeFlags(m session.Mode) List {
	f := List{"initialized"}
	switch m {
	case session.ModeSendRecv:
		f = append(f, "send", "recv")
	case session.ModeSendOnly:
		f = append(f, "send")
	case session.ModeRecvOnly:
		f = append(f, "recv")
	}
	return f
}

// queryDict is a call's statistics in the shape of rtpengine's `query`:
// per tag (monologue) its media, per media the stream facing that tag's
// endpoint with the RTP packets and bytes received from it. Caller holds mu.
func (s *Server) queryDict(c *call) Dict {
	tags := Dict{}
	var pkts, bytes uint64
	for _, d := range c.dialogs {
		for _, x := range []side{sideA, sideB} {
			tag := d.tagOf(x)
			if tag == "" {
				continue
			}
			mono, _ := tags[tag].(Dict)
			if mono == nil {
				mono = Dict{"tag": tag, "created": d.created.Unix(), "medias": List{}}
				tags[tag] = mono
			}
			if peer := d.tagOf(3 - x); peer != "" {
				sub := List{Dict{"tag": peer, "type": "offer/answer"}}
				mono["subscriptions"], mono["subscribers"] = sub, sub
			}
			medias := mono["medias"].(List)
			for _, st := range d.streams {
				if st == nil {
					continue
				}
				id, _ := st.facing(x)
				conn, err := s.table.Connection(id)
				if err != nil {
					continue
				}
				adv, mode := st.aAdv, st.aMode
				if x == sideB {
					adv, mode = st.bAdv, st.bMode
				}
				last := conn.Stats.LastReceived
				if last.IsZero() {
					last = conn.Created
				}
				strm := Dict{
					"local port":    int(conn.Local.Port()),
					"local address": conn.Local.Addr().String(),
					"family":        endpoint(conn.Local)["family"],
					"last packet":   last.Unix(),
					"flags":         List{"RTP"},
					"stats":         Dict{"packets": conn.Stats.PacketsReceived, "bytes": conn.Stats.OctetsReceived},
				}
				if conn.Remote.IsValid() {
					strm["endpoint"] = endpoint(conn.Remote)
					strm["flags"] = List{"RTP", "filled"}
				}
				if adv.IsValid() {
					strm["advertised endpoint"] = endpoint(adv)
				}
				pkts += conn.Stats.PacketsReceived
				bytes += conn.Stats.OctetsReceived
				medias = append(medias, Dict{"index": st.index, "type": st.kind, "protocol": st.proto,
					"streams": List{strm}, "flags": modeFlags(mode)})
			}
			mono["medias"] = medias
		}
	}
	return Dict{
		"created":     c.created.Unix(),
		"created_us":  int64(c.created.Nanosecond() / 1000),
		"last signal": c.lastSignal.Unix(),
		"tags":        tags,
		"totals":      Dict{"RTP": Dict{"packets": pkts, "bytes": bytes}},
	}
}

func (s *Server) list(req *Request) reply {
	limit := req.Limit
	if limit == 0 {
		limit = defaultListLimit
	}
	s.mu.Lock()
	ids := make([]string, 0, min(limit, len(s.calls)))
	for id := range s.calls {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return reply{result: resultOK, extra: Dict{"calls": ids}}
}

func (s *Server) statistics(*Request) reply {
	s.mu.Lock()
	n := len(s.calls)
	t := s.totals
	s.mu.Unlock()
	avg := 0.0
	if t.callCount > 0 {
		avg = t.callSecs / float64(t.callCount)
	}
	f6 := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	return reply{result: resultOK, extra: Dict{"statistics": Dict{
		"currentstatistics": Dict{
			"sessionsown":     n,
			"sessionsforeign": 0,
			"sessionstotal":   n,
			"transcodedmedia": 0,
		},
		"totalstatistics": Dict{
			"uptime":                    strconv.FormatInt(int64(time.Since(s.started).Seconds()), 10),
			"managedsessions":           t.managed,
			"regularterminatedsessions": t.regular,
			"forcedterminatedsessions":  t.forced,
			"timeoutsessions":           t.timeout,
			"avgcallduration":           f6(avg),
			"totalcallsduration":        f6(t.callSecs),
		},
	}}}
}
