package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// errUnsupportedMedia is a body that is not SDP (415).
var errUnsupportedMedia = errors.New("unsupported body")

// onInvite handles INVITE: a new call (no To-tag) or a re-INVITE.
func (s *Server) onInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		s.onReInvite(req, tx)
		return
	}
	if err := checkInvite(req); err != nil {
		s.fail(tx, req, err)
		return
	}
	ip := sourceIP(req)
	trusted := contains(s.adm.trusted, ip)
	pending, victim := s.unc.admit(ip, trusted)
	if victim != nil {
		// Answered over a second ago and never ACKed: most likely a forged
		// source. It makes room rather than the new caller being refused.
		s.met.refused.WithLabelValues(RefusedUnconfirmed).Inc()
		victim.end(endCause{release: session.Release{By: session.FrontSIP, Reason: "no ACK, dropped for a new call"}})
	}
	if pending == nil {
		s.refuse(tx, req, RefusedUnconfirmed, 503, "too many answered INVITEs waiting for their ACK", retryAfter(1))
		return
	}
	defer func() {
		if pending != nil { // no leg took the place
			s.unc.done(pending)
		}
	}()
	// sip.trying: always (the default) answers 100 at once, not after
	// sipgo's 200 ms. when_needed leaves it to answerBridge: every other
	// answer is final and at once, and RFC 3261 17.2.1 asks for a 100 only
	// when the final response may take over 200 ms (sipgo's server
	// transaction sends one itself then, as when the gateway is behind).
	// That is one datagram less per call: sendto was the largest single
	// cost of a call (profile at 11,000 calls/s).
	if s.cfg.Trying != TryingWhenNeeded {
		s.reply(tx, req, 100)
	}
	if s.isClosing() {
		s.fail(tx, req, session.ErrDraining)
		return
	}
	user := req.Recipient.User
	m, ok, err := route(s.rules, user)
	switch {
	case !ok:
		s.refused(func() *logrus.Entry {
			return s.log.WithFields(logrus.Fields{"call_id": callID(req), "user": user})
		}, "no route for the Request-URI user")
		s.reply(tx, req, 404)
		return
	case !routeAllows(m, sourceIP(req)): // the same answer as no route
		s.refuse(tx, req, RefusedRouteACL, 404, "source not in the route's allow list")
		return
	case err != nil:
		s.refused(func() *logrus.Entry { return s.log.WithError(err).WithField("call_id", callID(req)) },
			"route matched with an unusable conference id")
		s.reply(tx, req, 404)
		return
	case m.Action == ActionReject:
		s.refused(func() *logrus.Entry {
			return s.log.WithFields(logrus.Fields{"call_id": callID(req), "user": user, "code": m.Code})
		}, "call rejected by route")
		s.reply(tx, req, m.Code)
		return
	}
	offer, err := readOffer(req) // validated before anything is allocated
	if err != nil {
		s.fail(tx, req, err)
		return
	}
	l, err := s.newLeg(newTag(), callID(req), false)
	if errors.Is(err, errMaxCalls) {
		s.refuse(tx, req, RefusedMaxCalls, 503, "sip.max_calls reached", retryAfter(1))
		return
	}
	if err != nil {
		s.fail(tx, req, err)
		return
	}
	inv := tagged(req, l.tag)
	l.mu.Lock()
	l.unconfirmed = pending
	s.unc.attach(pending, l)
	pending = nil
	l.dlg = uasDialog(inv)
	l.inviting = true
	l.mu.Unlock()
	if !tx.OnCancel(func(*gosip.Request) {
		// Runs under the transaction's lock, which has answered 487 already.
		s.met.response(487)
		l.cancelled.Store(true)
		l.stopWork()
		s.bg.Go(func() { l.end(endCause{status: 487, release: session.Release{By: session.FrontSIP, Reason: "CANCEL"}}) })
	}) {
		l.end(endCause{status: 487, release: session.Release{By: session.FrontSIP, Reason: "CANCEL"}})
		return
	}
	switch m.Action {
	case ActionBridge:
		l.answerBridge(tx, inv, offer, m)
	default:
		l.answerLocal(tx, inv, offer, m)
	}
}

// tagged is req as answered by the leg with tag: a request sharing the
// request line, body and every header of req except To, which is a copy
// carrying tag, so that every response built from it (and the dialog) has
// our To-tag. req itself is never written: sipgo keeps it as the
// transaction's origin and reads it from other goroutines (CANCEL, its 1xx
// timer).
func tagged(req *gosip.Request, tag string) *gosip.Request {
	inv := *req // the request line, Laddr and the address responses go to
	inv.MessageData = gosip.MessageData{SipVersion: req.SipVersion}
	inv.SetBody(req.Body())
	for _, h := range req.Headers() {
		switch h := h.(type) {
		case *gosip.ToHeader:
			to := *h
			to.Params = append(make(gosip.HeaderParams, 0, len(h.Params)+1), h.Params...)
			to.Params.Add("tag", tag)
			inv.AppendHeader(&to)
		case *gosip.ContentLengthHeader: // SetBody added ours
		default:
			inv.AppendHeader(h)
		}
	}
	inv.SetTransport(req.Transport())
	inv.SetSource(req.Source()) // responses go to the source (and Via), not to a destination
	return &inv
}

// checkInvite validates what a dialog-creating INVITE must carry.
func checkInvite(req *gosip.Request) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	c := req.Contact()
	if c == nil || c.Address.Wildcard || c.Address.Host == "" {
		return fmt.Errorf("%w: INVITE without a usable Contact", errBadRequest)
	}
	if cs := req.CSeq(); cs.MethodName != gosip.INVITE {
		return fmt.Errorf("%w: CSeq method %s in INVITE", errBadRequest, cs.MethodName)
	}
	return nil
}

// checkRequest validates the headers every request we act on needs.
func checkRequest(req *gosip.Request) error {
	from, to, cid, cseq := req.From(), req.To(), req.CallID(), req.CSeq()
	switch {
	case from == nil || to == nil || cid == nil || cseq == nil:
		return fmt.Errorf("%w: missing From, To, Call-ID or CSeq", errBadRequest)
	case cid.Value() == "" || len(cid.Value()) > 256:
		return fmt.Errorf("%w: Call-ID", errBadRequest)
	case !from.Params.Has("tag"):
		return fmt.Errorf("%w: From without tag", errBadRequest)
	case req.Recipient.Scheme != "sip" && req.Recipient.Scheme != "sips":
		return fmt.Errorf("%w: Request-URI scheme %q", errBadRequest, req.Recipient.Scheme)
	}
	if t, _ := from.Params.Get("tag"); t == "" || len(t) > 128 {
		return fmt.Errorf("%w: From tag", errBadRequest)
	}
	return nil
}

// readOffer returns the SDP of a request, nil when it has no body.
func readOffer(req *gosip.Request) (*description, error) {
	body := req.Body()
	if len(body) == 0 {
		return nil, nil
	}
	if ct := req.ContentType(); ct == nil || !isSDP(ct.Value()) {
		return nil, fmt.Errorf("%w: Content-Type is not application/sdp", errUnsupportedMedia)
	}
	return parseSDP(body)
}

func isSDP(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
}

// uasDialog is the dialog of a leg that answered inv (which carries our To-tag).
func uasDialog(inv *gosip.Request) dialog {
	from := inv.To().AsFrom()
	to := inv.From().AsTo()
	d := dialog{
		from:      &from,
		to:        &to,
		target:    *inv.Contact().Address.Clone(),
		seq:       uint32(time.Now().UnixNano()&0x7fff) + 1,
		remoteSeq: inv.CSeq().SeqNo,
		transport: strings.ToUpper(inv.Transport()),
	}
	for _, rr := range inv.GetHeaders("Record-Route") {
		d.routes = append(d.routes, rr.Value())
	}
	if gosip.IsReliable(d.transport) {
		d.dest = inv.Source()
	}
	return d
}

// modeFor is the connection mode for our media direction.
func modeFor(action string, d direction) session.Mode {
	switch d {
	case dirSendOnly:
		return session.ModeSendOnly
	case dirRecvOnly:
		return session.ModeRecvOnly
	case dirInactive:
		return session.ModeInactive
	}
	if action == ActionEcho {
		return session.ModeLoopback
	}
	return session.ModeSendRecv
}

// defaultTE is the telephone-event format we offer.
var defaultTE = format{PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-16"}

// configuredFormats are the formats we offer for codec names.
func configuredFormats(names []string) []format {
	out := make([]format, 0, len(names))
	next := uint8(96)
	for _, n := range names {
		f, ok := format{}, false
		for _, sf := range staticFormats {
			if sf.is(n) {
				f, ok = sf, true
				break
			}
		}
		if !ok {
			f = format{PT: next, Name: n, Rate: 8000, Channels: 1}
			next++
		}
		out = append(out, f)
	}
	return out
}

// own records connID as the leg's connection; false when the leg ended
// meanwhile (the caller then releases the connection itself).
func (l *leg) own(connID, action string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateEnded {
		return false
	}
	l.connID, l.action = connID, action
	return true
}

// orphan releases a connection created for a leg that ended meanwhile.
func (s *Server) orphan(connID string) {
	if _, err := s.table.DeleteConnection(connID, "", session.Release{By: session.FrontSIP, Reason: "call ended during setup"}); err != nil {
		s.log.WithError(err).WithField("conn_id", connID).Debug("orphan connection already released")
	}
}

// answerLocal answers a call that the gateway terminates: a conference
// member or an echo.
func (l *leg) answerLocal(tx gosip.ServerTransaction, inv *gosip.Request, offer *description, m match) {
	s := l.s
	var codec format
	var te *format
	dir, remote, ptime := dirSendRecv, netip.AddrPort{}, time.Duration(0)
	if offer != nil {
		c, ok := pickCodec(offer.Formats, s.codecs)
		if !ok && m.Action == ActionEcho {
			if a := audioCodecs(offer.Formats); len(a) > 0 {
				c, ok = a[0], true
			}
		}
		if !ok {
			l.failInvite(tx, inv, fmt.Errorf("%w: no offered codec is one of %v", errSDPNotAcceptable, s.codecs))
			return
		}
		codec = c
		if t, ok := telephoneEvent(offer.Formats); ok {
			te = &t
		}
		dir, remote = offer.effectiveDir().reverse(), offer.remote()
		if m.Action == ActionEcho {
			ptime = offer.Ptime
		}
	} else {
		codec = configuredFormats(s.codecs)[0]
		t := defaultTE
		te = &t
	}
	var keys *session.SRTP
	var cryptos []crypto
	if offer != nil {
		var err error
		if keys, cryptos, err = answerSRTP(s.table.SRTPMode(), offer, nil); err != nil {
			l.failInvite(tx, inv, err)
			return
		}
	} else {
		cryptos = offerSRTP(s.table.SRTPMode()) // keyed when the ACK answers
	}
	conn, err := s.table.CreateConnection(session.ConnectionParams{Remote: remote, SignalingIP: signalingIP(inv), SRTP: keys,
		Codec: codec.Name, Ptime: ptime, Mode: modeFor(m.Action, dir), Owner: session.FrontSIP, CallID: l.callID, Tag: l.tag,
		TelephoneEvent: telephoneEventPT(offer)})
	if err != nil {
		l.failInvite(tx, inv, err)
		return
	}
	if !l.own(conn.ID, m.Action) {
		s.orphan(conn.ID)
		l.answerEnded(tx, inv)
		return
	}
	if m.Action == ActionConference && m.Pin == "" {
		if _, err := s.table.JoinOrCreate(m.ConfID, session.KindConference, conn.ID, session.MemberAttrs{}); err != nil {
			l.failInvite(tx, inv, err)
			return
		}
	}
	var offered []format
	if offer == nil {
		offered = append(configuredFormats(s.codecs), defaultTE)
	} else {
		offered = []format{codec}
		if te != nil {
			offered = append(offered, *te)
		}
	}
	l.mu.Lock()
	l.media.codec, l.media.te, l.media.dir, l.media.ptime, l.media.local = codec, te, dir, conn.Ptime, conn.Local
	l.media.crypto = cryptos
	body := l.sdpLocked(offered, offer)
	l.mu.Unlock()
	if s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		l.logger().WithFields(logrus.Fields{"conn_id": conn.ID, "conf_id": m.ConfID, "action": m.Action, "codec": codec.Name}).Debug("call answered")
	}
	l.accept(tx, inv, body, offer == nil)
	if m.Action == ActionConference && m.Pin != "" {
		s.startPin(l, conn.ID, m) // outside the conference until the PIN is right
	}
}

// sdpLocked writes our next SDP version. Caller holds mu.
func (l *leg) sdpLocked(formats []format, offer *description) []byte {
	l.media.version++
	l.saveLocked()
	return buildSDP(localMedia{SessID: l.media.sessID, Version: l.media.version, Addr: l.media.local,
		Formats: formats, Dir: l.media.dir, Ptime: l.media.ptime, Crypto: l.media.crypto}, offer)
}

// okResponse is a 2xx to an INVITE (or UPDATE) with our Contact and SDP.
func (l *leg) okResponse(req *gosip.Request, body []byte) response {
	r := response{code: 200, body: body}
	if t := l.s.transportFor(req.Transport()); t != nil {
		r.hdrs = append(r.hdrs, &t.contact) // shared: a response's headers are only read
	}
	if body != nil {
		r.hdrs = append(r.hdrs, sdpContentType)
	}
	return r
}

// accept sends the 2xx to the initial INVITE and waits for the ACK; with a
// late offer, the ACK carries the answer.
func (l *leg) accept(tx gosip.ServerTransaction, inv *gosip.Request, body []byte, lateOffer bool) {
	seq := inv.CSeq().SeqNo
	l.mu.Lock()
	if l.state != stateEarly {
		l.mu.Unlock()
		l.answerEnded(tx, inv)
		return
	}
	l.state = stateAnswered
	acks := l.expectAck(seq)
	l.mu.Unlock()
	defer l.endInvite()

	ack, err := l.send2xx(tx, inv, l.okResponse(inv, body), acks, seq)
	if err != nil {
		if !errors.Is(err, errLegEnded) {
			l.logger().WithError(err).Info("call not confirmed; hanging up")
			l.end(endCause{bye: true, reason: `SIP;cause=408;text="no ACK"`,
				release: session.Release{By: session.FrontSIP, Reason: "no ACK"}})
		}
		return
	}
	if lateOffer {
		if err := l.applyAnswer(ack); err != nil {
			code, _ := status(err)
			l.logger().WithError(err).Info("unusable SDP answer in ACK; hanging up")
			l.end(endCause{bye: true, reason: fmt.Sprintf(`SIP;cause=%d;text="bad SDP answer"`, code),
				release: session.Release{By: session.FrontSIP, Reason: "bad SDP answer"}})
			return
		}
	}
	l.mu.Lock()
	if l.state == stateAnswered {
		l.confirmLocked()
	}
	l.mu.Unlock()
}

// applyAnswer applies the SDP answer (in an ACK) to an offer of ours.
func (l *leg) applyAnswer(ack *gosip.Request) error {
	ans, err := readOffer(ack)
	if err != nil {
		return err
	}
	if ans == nil {
		return fmt.Errorf("%w: ACK without the SDP answer", errSDPNotAcceptable)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateEnded {
		return errLegEnded
	}
	names := l.s.codecs
	if l.action == ActionBridge {
		names = []string{l.media.codec.Name}
	}
	codec, ok := pickCodec(ans.Formats, names)
	if !ok && l.action == ActionEcho {
		codec, ok = pickCodec(ans.Formats, []string{l.media.codec.Name})
	}
	if !ok {
		return fmt.Errorf("%w: answer has none of the offered codecs", errSDPNotAcceptable)
	}
	keys, cryptos, err := takeSRTPAnswer(l.media.crypto, ans)
	if err != nil {
		return err
	}
	dir := ans.effectiveDir().reverse()
	p := session.ConnectionParams{Remote: ans.remote(), SignalingIP: signalingIP(ack), SRTP: keys, Mode: modeFor(l.action, dir),
		TelephoneEvent: telephoneEventPT(ans)}
	if !codec.is(l.media.codec.Name) {
		p.Codec = codec.Name
	}
	if _, err := l.s.table.ModifyConnection(l.connID, p); err != nil {
		return err
	}
	l.media.codec, l.media.dir, l.media.crypto = codec, dir, cryptos
	if t, ok := telephoneEvent(ans.Formats); ok {
		l.media.te = &t
	} else {
		l.media.te = nil
	}
	return nil
}

// failInvite ends a leg whose INVITE cannot be accepted and answers it
// with the status for err.
func (l *leg) failInvite(tx gosip.ServerTransaction, inv *gosip.Request, err error) {
	code, _ := status(err)
	l.s.refused(func() *logrus.Entry { return l.logger().WithError(err).WithField("code", code) }, "call refused")
	l.end(endCause{status: code, release: session.Release{By: session.FrontSIP, Reason: "call setup failed"}})
	l.answerEnded(tx, inv)
}

// answerEnded sends the final response owed to the INVITE of a leg that
// ended before answering (unless a CANCEL answered it with 487 already).
func (l *leg) answerEnded(tx gosip.ServerTransaction, inv *gosip.Request) {
	if l.cancelled.Load() {
		return
	}
	l.mu.Lock()
	code := l.status
	l.mu.Unlock()
	if code == 0 {
		code = 500
	}
	res := gosip.NewResponseFromRequest(inv, code, reasonPhrase(code), nil)
	if err := l.s.respond(tx, res); err != nil {
		l.logger().WithError(err).Debug("final response not sent")
	}
}

// provisional forwards a bridge target's 18x to the caller (without SDP:
// media flows once the call is answered).
func (l *leg) provisional(tx gosip.ServerTransaction, inv *gosip.Request, r *gosip.Response) {
	if r.StatusCode <= 100 || r.StatusCode >= 200 {
		return
	}
	l.mu.Lock()
	early := l.state == stateEarly
	l.mu.Unlock()
	if !early {
		return
	}
	res := gosip.NewResponseFromRequest(inv, r.StatusCode, r.Reason, nil)
	if t := l.s.transportFor(inv.Transport()); t != nil {
		res.AppendHeader(t.contact.Clone())
	}
	if err := l.s.respond(tx, res); err != nil {
		l.logger().WithError(err).Debug("forwarding provisional response failed")
	}
}

// inDialog finds the leg of an in-dialog request and checks its CSeq (and,
// with check, the request itself), answering the failure itself: 400 for
// a bad request, 481 for an unknown dialog, 500 for a CSeq out of order.
// It returns nil when it has answered.
func (s *Server) inDialog(req *gosip.Request, tx gosip.ServerTransaction, check bool) *leg {
	if check {
		if err := checkRequest(req); err != nil {
			s.fail(tx, req, err)
			return nil
		}
	}
	l := s.dialogLeg(req)
	if l == nil {
		s.reply(tx, req, 481)
		return nil
	}
	if !l.checkSeq(req) {
		s.reply(tx, req, 500)
		return nil
	}
	return l
}

// onAck hands an ACK to the 2xx waiting for it.
func (s *Server) onAck(req *gosip.Request, _ gosip.ServerTransaction) {
	l := s.dialogLeg(req)
	// No match is common: the BYE that follows at once can overtake the ACK.
	if (l == nil || !l.takeAck(req)) && s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		s.log.WithField("call_id", callID(req)).Debug("ACK matches no 2xx we wait for")
	}
}

// onBye ends a call leg on the remote party's BYE.
func (s *Server) onBye(req *gosip.Request, tx gosip.ServerTransaction) {
	l := s.inDialog(req, tx, false)
	if l == nil {
		return
	}
	l.end(endCause{status: 487, release: session.Release{By: session.FrontSIP, Reason: "BYE"}})
	// The 200 goes once the release is written to the state (a group
	// commit: ~10 ms with a store, at once without): a BYE answered before
	// a crash must not find its call restored after it. A store that does
	// not answer in time delays the 200 by syncWait only.
	ctx, cancel := context.WithTimeout(context.Background(), syncWait)
	if err := s.table.Synced(ctx); err != nil {
		l.logger().WithError(err).Debug("BYE answered before its release was written")
	}
	cancel()
	s.reply(tx, req, 200)
}

// syncWait bounds how long an answer waits for the state to be written.
const syncWait = 250 * time.Millisecond
