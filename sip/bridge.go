package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// answerBridge answers a call routed to a bridge: it calls the target
// (B2BUA), forwards its 18x and final response, and relays the media of the
// two legs through session Bridge. The codecs offered to the target are
// the caller's; the caller is answered with the one the target chose.
func (l *leg) answerBridge(tx gosip.ServerTransaction, inv *gosip.Request, offer *description, m match) {
	s := l.s
	if s.cfg.Trying == TryingWhenNeeded {
		s.reply(tx, inv, 100) // at once, not after sipgo's 200 ms: the callee may take seconds
	}
	target, err := parseTargetURI(m.Target)
	if err != nil {
		l.failInvite(tx, inv, fmt.Errorf("%w: bridge route target: %v", session.ErrInternal, err))
		return
	}
	var codecs []format
	te := &defaultTE
	dirA := dirSendRecv
	ptime := time.Duration(0) // conference.ptime
	if offer != nil {
		codecs = audioCodecs(offer.Formats)
		te = nil
		if t, ok := telephoneEvent(offer.Formats); ok {
			te = &t
		}
		dirA = offer.effectiveDir().reverse()
		if offer.Ptime > 0 {
			ptime = offer.Ptime
		}
	} else {
		codecs = configuredFormats(s.codecs)
	}
	if len(codecs) == 0 {
		l.failInvite(tx, inv, fmt.Errorf("%w: no audio codec offered", errSDPNotAcceptable))
		return
	}
	remoteA := offer.remoteOrZero()
	// Each side's SRTP is its own: A's from its offer (or ours under a late
	// offer), B's from what we offer the target.
	var keysA *session.SRTP
	var cryptoA []crypto
	if offer != nil {
		if keysA, cryptoA, err = answerSRTP(s.table.SRTPMode(), offer, nil); err != nil {
			l.failInvite(tx, inv, err)
			return
		}
	} else {
		cryptoA = offerSRTP(s.table.SRTPMode())
	}
	connA, err := s.table.CreateConnection(session.ConnectionParams{Remote: remoteA, SignalingIP: signalingIP(inv), SRTP: keysA,
		Codec: codecs[0].Name, Ptime: ptime, Mode: modeFor(ActionBridge, dirA), Owner: session.FrontSIP, CallID: l.callID, Tag: l.tag,
		TelephoneEvent: telephoneEventPT(offer)})
	if err != nil {
		l.failInvite(tx, inv, err)
		return
	}
	if !l.own(connA.ID, ActionBridge) {
		s.orphan(connA.ID)
		l.answerEnded(tx, inv)
		return
	}
	b, err := s.newLeg(newTag(), uuid.NewString(), true)
	if err != nil {
		l.failInvite(tx, inv, err)
		return
	}
	connB, err := s.table.CreateConnection(session.ConnectionParams{Codec: codecs[0].Name, Ptime: ptime,
		Mode: session.ModeSendRecv, Owner: session.FrontSIP, CallID: b.callID, Tag: b.tag})
	if err != nil {
		b.end(endCause{})
		l.failInvite(tx, inv, err)
		return
	}
	if !b.own(connB.ID, ActionBridge) || !link(l, b) {
		s.orphan(connB.ID)
		b.end(endCause{})
		l.answerEnded(tx, inv)
		return
	}
	offered := slices.Clone(codecs)
	if te != nil {
		offered = append(offered, *te)
	}
	b.mu.Lock()
	b.media.local, b.media.dir, b.media.ptime = connB.Local, dirSendRecv, connB.Ptime
	b.media.crypto = offerSRTP(s.table.SRTPMode())
	offerB := b.sdpLocked(offered, nil)
	b.mu.Unlock()

	from := inv.From()
	res, err := b.dial(target, offerB, from.DisplayName, from.Address.User, nil,
		func(r *gosip.Response) { l.provisional(tx, inv, r) })
	if err != nil {
		code := dialFailure(err, res)
		l.logger().WithError(err).WithFields(logrus.Fields{"target": target.String(), "code": code}).Info("bridge target did not answer")
		unlink(l, b)
		b.end(endCause{release: session.Release{By: session.FrontSIP, Reason: "bridge target failed"}})
		l.end(endCause{status: code, release: session.Release{By: session.FrontSIP, Reason: "bridge target failed"}})
		l.answerEnded(tx, inv)
		return
	}
	codecA, _, teB, err := b.takeAnswer(res, codecs)
	if err == nil {
		_, err = s.table.ModifyConnection(connA.ID, session.ConnectionParams{Codec: codecA.Name})
	}
	if err == nil {
		_, err = s.table.Bridge(connA.ID, connB.ID)
	}
	if err != nil {
		code, _ := status(err)
		l.logger().WithError(err).WithField("target", target.String()).Info("bridge target's answer unusable; hanging it up")
		unlink(l, b)
		b.end(endCause{bye: true, reason: fmt.Sprintf(`SIP;cause=%d;text="%s"`, code, reasonPhrase(code)),
			release: session.Release{By: session.FrontSIP, Reason: "bridge answer unusable"}})
		l.end(endCause{status: code, release: session.Release{By: session.FrontSIP, Reason: "bridge answer unusable"}})
		l.answerEnded(tx, inv)
		return
	}
	answer := []format{codecA}
	var teA *format
	if te != nil && teB != nil {
		teA = te
		answer = append(answer, *te)
	}
	l.mu.Lock()
	l.media.codec, l.media.te, l.media.dir, l.media.ptime, l.media.local = codecA, teA, dirA, connA.Ptime, connA.Local
	l.media.crypto = cryptoA
	body := l.sdpLocked(answer, offer)
	l.mu.Unlock()
	l.logger().WithFields(logrus.Fields{"conn_id": connA.ID, "peer_conn_id": connB.ID, "target": target.String(),
		"codec": codecA.Name}).Debug("bridge call answered")
	l.accept(tx, inv, body, offer == nil)
}

// remoteOrZero is the offer's remote media address (zero without an offer).
func (d *description) remoteOrZero() (ap netip.AddrPort) {
	if d == nil {
		return ap
	}
	return d.remote()
}

// takeAnswer applies the SDP answer in a 2xx of the target: it picks the
// codec (one of offered, in the caller's payload type for the caller's
// side), and points the connection at the target's media.
func (b *leg) takeAnswer(res *gosip.Response, offered []format) (mine, theirs format, te *format, err error) {
	ans, err := readOfferResponse(res)
	if err != nil {
		return mine, theirs, nil, err
	}
	for _, f := range ans.Formats {
		i := slices.IndexFunc(offered, func(o format) bool { return o.is(f.Name) && o.Rate == f.Rate })
		if i >= 0 {
			mine, theirs = offered[i], f
			break
		}
	}
	if theirs.Name == "" {
		return mine, theirs, nil, fmt.Errorf("%w: the answer has none of the offered codecs", errSDPNotAcceptable)
	}
	if t, ok := telephoneEvent(ans.Formats); ok {
		te = &t
	}
	dir := ans.effectiveDir().reverse()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == stateEnded {
		return mine, theirs, nil, errLegEnded
	}
	keys, cryptos, err := takeSRTPAnswer(b.media.crypto, ans)
	if err != nil {
		return mine, theirs, nil, err
	}
	if _, err := b.s.table.ModifyConnection(b.connID, session.ConnectionParams{Remote: ans.remote(), SignalingIP: signalingIP(res),
		SRTP: keys, Codec: theirs.Name, Mode: modeFor(ActionBridge, dir), TelephoneEvent: telephoneEventPT(ans)}); err != nil {
		return mine, theirs, nil, err
	}
	b.media.codec, b.media.te, b.media.dir, b.media.crypto = theirs, te, dir, cryptos
	return mine, theirs, te, nil
}

// readOfferResponse returns the SDP of a 2xx; a 2xx to our offer must have one.
func readOfferResponse(res *gosip.Response) (*description, error) {
	if len(res.Body()) == 0 {
		return nil, fmt.Errorf("%w: 2xx without SDP", errSDPNotAcceptable)
	}
	if ct := res.ContentType(); ct == nil || !isSDP(ct.Value()) {
		return nil, fmt.Errorf("%w: Content-Type is not application/sdp", errUnsupportedMedia)
	}
	return parseSDP(res.Body())
}

// link makes a and b bridge partners; false if either ended meanwhile.
func link(a, b *leg) bool {
	a.mu.Lock()
	ok := a.state != stateEnded
	if ok {
		a.partner = b
		a.saveLocked()
	}
	a.mu.Unlock()
	if !ok {
		return false
	}
	b.mu.Lock()
	ok = b.state != stateEnded
	if ok {
		b.partner = a
		b.saveLocked()
	}
	b.mu.Unlock()
	if !ok {
		unlink(a, b)
	}
	return ok
}

// unlink undoes link, so that ending one does not end the other.
func unlink(a, b *leg) {
	for _, x := range []*leg{a, b} {
		x.mu.Lock()
		if x.partner == a || x.partner == b {
			x.partner = nil
		}
		x.mu.Unlock()
	}
}

// dial sends the INVITE of an outbound leg (bridge or transfer target) and
// waits for the final response, forwarding provisional ones to onProv. On
// a 2xx it ACKs and the leg is confirmed; a failure returns the final
// response (if any) with the error. Ending the leg meanwhile cancels the
// INVITE.
func (b *leg) dial(target gosip.Uri, body []byte, display, user string, hdrs []gosip.Header, onProv func(*gosip.Response)) (*gosip.Response, error) {
	s := b.s
	network := "UDP"
	if tp, ok := target.UriParams.Get("transport"); ok && strings.EqualFold(tp, "tcp") {
		network = "TCP"
	}
	t := s.transportFor(network)
	if t == nil {
		return nil, fmt.Errorf("no %s listener to call %s from", network, target.String())
	}
	if user == "" {
		user = userAgent
	}
	req := gosip.NewRequest(gosip.INVITE, *target.Clone())
	from := &gosip.FromHeader{DisplayName: display, Address: gosip.Uri{Scheme: "sip", User: user, Host: s.host}, Params: gosip.NewParams()}
	from.Params.Add("tag", b.tag)
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: target.User, Host: target.Host, Port: target.Port}, Params: gosip.NewParams()})
	cid := gosip.CallIDHeader(b.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: 1, MethodName: gosip.INVITE})
	mf := gosip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(t.contact.Clone())
	req.AppendHeader(gosip.NewHeader("User-Agent", userAgent))
	req.AppendHeader(gosip.NewHeader("Allow", allowHeader))
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	req.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	req.SetTransport(network)
	if network == "UDP" {
		t.laddr.Copy(&req.Laddr)
	}
	ua := sipgo.DialogUA{Client: t.client, ContactHDR: t.contact}
	ctx := b.context()
	dcs, err := ua.WriteInvite(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	err = dcs.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *gosip.Response) error {
		if r.IsProvisional() && onProv != nil {
			onProv(r)
		}
		return nil
	}})
	if err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return de.Res, err
		}
		if ctx.Err() != nil {
			return nil, errLegEnded
		}
		return nil, err
	}
	res := dcs.InviteResponse
	ackErr := dcs.Ack(context.Background())

	b.mu.Lock()
	b.dlg = uacDialog(req, res, network)
	ended := b.state == stateEnded
	if !ended {
		b.confirmLocked()
	}
	b.mu.Unlock()
	switch {
	case ended: // hung up while the target answered: release it at once
		s.bg.Go(func() { b.bye(`SIP;cause=487;text="call ended"`) })
		return res, errLegEnded
	case ackErr != nil:
		b.end(endCause{bye: true, release: session.Release{By: session.FrontSIP, Reason: "ACK failed"}})
		return res, fmt.Errorf("sending ACK: %w", ackErr)
	}
	return res, nil
}

// uacDialog is the dialog of a leg that sent req and got the 2xx res.
func uacDialog(req *gosip.Request, res *gosip.Response, network string) dialog {
	from := gosip.HeaderClone(req.From()).(*gosip.FromHeader)
	d := dialog{from: from, seq: req.CSeq().SeqNo, transport: network, target: *req.Recipient.Clone()}
	if to := res.To(); to != nil {
		d.to = gosip.HeaderClone(to).(*gosip.ToHeader)
	}
	if c := res.Contact(); c != nil && c.Address.Host != "" {
		d.target = *c.Address.Clone()
	}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		d.routes = append(d.routes, rrs[i].Value())
	}
	if gosip.IsReliable(network) {
		d.dest = res.Source()
	}
	return d
}

// dialFailure is the status we answer a caller with when the bridge or
// transfer target failed.
func dialFailure(err error, res *gosip.Response) int {
	switch {
	case res != nil && res.StatusCode >= 300:
		switch c := res.StatusCode; {
		case c == 401 || c == 407:
			return 403 // the target wants credentials we do not have
		case c < 400:
			return 480
		default:
			return c
		}
	case errors.Is(err, errLegEnded):
		return 487
	case errors.Is(err, gosip.ErrTransactionTimeout):
		return 408
	}
	return 502
}
