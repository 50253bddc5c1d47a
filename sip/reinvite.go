package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// onReInvite handles an INVITE inside a dialog: hold and resume through the
// SDP direction, a new remote address or codec (ModifyConnection), or no
// SDP at all (we offer, the ACK answers).
func (s *Server) onReInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	l, offer, ok := s.beginOffer(req, tx)
	if !ok {
		return
	}
	defer l.endInvite()
	var err error
	s.reply(tx, req, 100)

	var body []byte
	if offer != nil {
		body, err = l.renegotiate(offer, signalingIP(req))
	} else {
		body, err = l.currentOffer()
	}
	if err != nil {
		s.fail(tx, req, err) // the session stays as it was
		return
	}
	l.refreshTarget(req)
	seq := req.CSeq().SeqNo
	l.mu.Lock()
	acks := l.expectAck(seq)
	l.mu.Unlock()
	ack, err := l.send2xx(tx, req, l.okResponse(req, body), acks, seq)
	if err != nil {
		if !errors.Is(err, errLegEnded) {
			l.logger().WithError(err).Info("re-INVITE not confirmed; hanging up")
			l.end(endCause{bye: true, reason: `SIP;cause=408;text="no ACK"`, release: session.Release{By: session.FrontSIP, Reason: "no ACK"}})
		}
		return
	}
	if offer == nil {
		if err := l.applyAnswer(ack); err != nil {
			l.logger().WithError(err).Info("unusable SDP answer in ACK; hanging up")
			l.end(endCause{bye: true, reason: `SIP;cause=488;text="bad SDP answer"`, release: session.Release{By: session.FrontSIP, Reason: "bad SDP answer"}})
		}
	}
}

// beginInvite marks an offer/answer exchange as in progress. A request
// that overtook the ACK of the previous exchange waits (bounded) for it;
// when the call is not up, or an exchange is still pending, it answers req
// and returns false.
func (l *leg) beginInvite(tx gosip.ServerTransaction, req *gosip.Request) bool {
	l.awaitConfirmed()
	for try := 0; ; try++ {
		l.mu.Lock()
		code := 0
		switch {
		case l.state == stateEnded:
			code = 481
		case l.state != stateConfirmed:
			code = 491
		case l.inviting && try == 0:
			wait := l.invited
			l.mu.Unlock()
			t := time.NewTimer(4 * gosip.T1)
			select {
			case <-wait:
			case <-l.done:
			case <-t.C:
			}
			t.Stop()
			continue
		case l.inviting:
			code = 500 // RFC 3261 §14.2: the previous INVITE is not done
		default:
			l.inviting = true
			l.invited = make(chan struct{})
		}
		l.mu.Unlock()
		if code != 0 {
			var hdrs []gosip.Header
			if code == 500 {
				hdrs = append(hdrs, gosip.NewHeader("Retry-After", "1"))
			}
			l.s.reply(tx, req, code, hdrs...)
			return false
		}
		return true
	}
}

func (l *leg) endInvite() {
	l.mu.Lock()
	if l.inviting {
		l.inviting = false
		close(l.invited)
	}
	l.mu.Unlock()
}

// refreshTarget takes a new Contact of a target refresh request.
func (l *leg) refreshTarget(req *gosip.Request) {
	c := req.Contact()
	if c == nil || c.Address.Wildcard || c.Address.Host == "" {
		return
	}
	l.mu.Lock()
	l.dlg.target = *c.Address.Clone()
	l.rec.target = ""
	l.saveLocked()
	l.mu.Unlock()
}

// renegotiate answers a new offer in the dialog and applies it to the
// connection: remote address, codec, and the direction (hold/resume).
func (l *leg) renegotiate(offer *description, src netip.Addr) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateEnded || l.connID == "" {
		return nil, errLegEnded
	}
	codec, err := l.chooseCodecLocked(offer.Formats)
	if err != nil {
		return nil, err
	}
	var te *format
	if t, ok := telephoneEvent(offer.Formats); ok {
		te = &t
	}
	keys, cryptos, err := answerSRTP(l.s.table.SRTPMode(), offer, l.media.crypto)
	if err != nil {
		return nil, err
	}
	dir := offer.effectiveDir().reverse()
	p := session.ConnectionParams{Remote: offer.remote(), SignalingIP: src, SRTP: keys, Mode: modeFor(l.action, dir),
		TelephoneEvent: telephoneEventPT(offer)}
	if !codec.is(l.media.codec.Name) {
		p.Codec = codec.Name
	}
	if offer.Ptime > 0 && l.action != ActionConference {
		p.Ptime = offer.Ptime
	}
	conn, err := l.s.table.ModifyConnection(l.connID, p)
	if err != nil {
		return nil, err
	}
	l.logger().WithFields(logrus.Fields{"conn_id": l.connID, "mode": conn.Mode, "codec": codec.Name,
		"remote": conn.Remote.String()}).Debug("media renegotiated")
	l.media.codec, l.media.te, l.media.dir, l.media.ptime, l.media.crypto = codec, te, dir, conn.Ptime, cryptos
	l.saveLocked()
	formats := []format{codec}
	if te != nil {
		formats = append(formats, *te)
	}
	return l.sdpLocked(formats, offer), nil
}

// chooseCodecLocked picks the codec of a new offer: the current one when
// offered still; a bridged leg must keep it (its partner uses it).
func (l *leg) chooseCodecLocked(offered []format) (format, error) {
	if c, ok := pickCodec(offered, []string{l.media.codec.Name}); ok {
		return c, nil
	}
	switch l.action {
	case ActionConference:
		if c, ok := pickCodec(offered, l.s.codecs); ok {
			return c, nil
		}
	case ActionEcho:
		if c, ok := pickCodec(offered, l.s.codecs); ok {
			return c, nil
		}
		if a := audioCodecs(offered); len(a) > 0 {
			return a[0], nil
		}
	}
	return format{}, fmt.Errorf("%w: the offer drops codec %s", errSDPNotAcceptable, l.media.codec.Name)
}

// currentOffer is our offer for a re-INVITE without SDP: the session as it is.
func (l *leg) currentOffer() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateEnded || l.connID == "" {
		return nil, errLegEnded
	}
	formats := []format{l.media.codec}
	if l.media.te != nil {
		formats = append(formats, *l.media.te)
	}
	return l.sdpLocked(formats, nil), nil
}

// beginOffer starts a re-INVITE or UPDATE: the dialog's leg, the offer it
// carries (nil when none) and the leg's offer slot taken; false when a
// response has already been sent.
func (s *Server) beginOffer(req *gosip.Request, tx gosip.ServerTransaction) (*leg, *description, bool) {
	l := s.inDialog(req, tx, true)
	if l == nil {
		return nil, nil, false
	}
	offer, err := readOffer(req)
	if err != nil {
		s.fail(tx, req, err)
		return nil, nil, false
	}
	if !l.beginInvite(tx, req) {
		return nil, nil, false
	}
	return l, offer, true
}

// onUpdate handles UPDATE (RFC 3311) in a confirmed dialog like a
// re-INVITE, answered in the 200 itself.
func (s *Server) onUpdate(req *gosip.Request, tx gosip.ServerTransaction) {
	l, offer, ok := s.beginOffer(req, tx)
	if !ok {
		return
	}
	defer l.endInvite()
	var err error
	var body []byte
	if offer != nil {
		if body, err = l.renegotiate(offer, signalingIP(req)); err != nil {
			s.fail(tx, req, err)
			return
		}
	}
	l.refreshTarget(req)
	if _, err := s.send(tx, req, l.okResponse(req, body)); err != nil {
		l.logger().WithError(err).Debug("UPDATE response not sent")
	}
}

// onInfo: a DTMF INFO (application/dtmf-relay or application/dtmf) is a
// digit of the leg's connection (a DigitReceived event, as an RFC 4733
// digit would be; a bad one is 400). Then, on a bridge, the INFO passes
// through to the partner and is answered with its status; elsewhere it is
// acknowledged.
func (s *Server) onInfo(req *gosip.Request, tx gosip.ServerTransaction) {
	l := s.inDialog(req, tx, false)
	if l == nil {
		return
	}
	ct := "application/octet-stream"
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	l.mu.Lock()
	p, connID := l.partner, l.connID
	l.mu.Unlock()
	if code, dtmf, bad := infoDigit(ct, req.Body()); bad {
		s.reply(tx, req, 400)
		return
	} else if dtmf && connID != "" {
		if err := s.table.ReceiveDigit(connID, code); err != nil {
			l.logger().WithError(err).Debug("INFO digit for a connection that is gone")
		}
	}
	if p == nil {
		s.reply(tx, req, 200)
		return
	}
	var body []byte
	if len(req.Body()) > 0 {
		body = req.Body()
	}
	ctx, cancel := context.WithTimeout(context.Background(), gosip.Timer_F)
	defer cancel()
	res, err := p.request(ctx, gosip.INFO, ct, body)
	if err != nil {
		s.reply(tx, req, 408)
		return
	}
	code := res.StatusCode
	if code == 401 || code == 407 {
		code = 403
	}
	s.reply(tx, req, code)
}
