package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// onRefer handles REFER (RFC 3515) in a confirmed dialog: the gateway is
// the transferee. It answers 202 and carries the transfer out in the
// background, reporting progress with NOTIFY (message/sipfrag).
func (s *Server) onRefer(req *gosip.Request, tx gosip.ServerTransaction) {
	l := s.inDialog(req, tx, true)
	if l == nil {
		return
	}
	target, err := referTarget(req)
	if err != nil {
		s.fail(tx, req, err)
		return
	}
	if code := s.referAllowed(req, target); code != 0 {
		s.refuse(tx, req, RefusedRouteACL, code, "REFER target not allowed for the source")
		return
	}
	l.awaitConfirmed()
	l.mu.Lock()
	code := 0
	switch {
	case l.state == stateEnded:
		code = 481
	case l.state != stateConfirmed || l.referring:
		code = 491
	default:
		l.referring = true
	}
	l.mu.Unlock()
	if code != 0 {
		s.reply(tx, req, code)
		return
	}
	s.reply(tx, req, 202)
	seq := req.CSeq().SeqNo
	var by []gosip.Header
	if h := req.GetHeader("Referred-By"); h != nil {
		by = append(by, gosip.NewHeader("Referred-By", h.Value()))
	}
	s.bg.Go(func() { l.transfer(target, seq, by) })
}

// referTarget is the single sip: URI of a REFER's Refer-To.
func referTarget(req *gosip.Request) (gosip.Uri, error) {
	hs := req.GetHeaders("Refer-To")
	if len(hs) != 1 {
		return gosip.Uri{}, fmt.Errorf("%w: want one Refer-To, got %d", errBadRequest, len(hs))
	}
	var u gosip.Uri
	params := gosip.NewParams()
	if _, err := gosip.ParseAddressValue(hs[0].Value(), &u, &params); err != nil {
		return u, fmt.Errorf("%w: Refer-To: %v", errBadRequest, err)
	}
	if u.Scheme != "sip" || u.Host == "" || u.Wildcard {
		return u, fmt.Errorf("%w: Refer-To must be a sip: URI", errBadRequest)
	}
	u.Headers = nil // embedded headers (Replaces) are not supported
	return u, nil
}

// conferenceOf is the mixed conference the leg's connection is in.
func (l *leg) conferenceOf() (string, bool) {
	l.mu.Lock()
	connID := l.connID
	l.mu.Unlock()
	c, err := l.s.table.Connection(connID)
	if err != nil || c.ConferenceID == "" {
		return "", false
	}
	cf, err := l.s.table.Conference(c.ConferenceID)
	if err != nil || cf.Kind != session.KindConference {
		return "", false
	}
	return cf.ID, true
}

// transfer carries out a REFER accepted with 202: on a conference leg the
// target joins (or, one of our conferences, is linked to) the referrer's
// conference; on a bridge or echo leg the call moves to the target.
func (l *leg) transfer(target gosip.Uri, seq uint32, hdrs []gosip.Header) {
	defer func() {
		l.mu.Lock()
		l.referring = false
		l.mu.Unlock()
	}()
	log := l.logger().WithField("refer_to", target.String())
	l.notify(seq, 100, false)
	var code int
	if conf, ok := l.conferenceOf(); ok {
		// A conference leg: the gateway is the focus (RFC 4579 §5.5). The
		// target is brought into the referrer's conference, which the
		// referrer leaves only by hanging up, as transferors do.
		if confID, own := l.s.ownConference(target); own {
			code = 200
			if confID != conf {
				if err := l.s.table.LinkConferences(conf, confID); err != nil && !errors.Is(err, session.ErrLinked) {
					code, _ = status(err)
					if errors.Is(err, session.ErrUnknownConference) {
						code = 404
					}
				}
			}
			log.WithFields(logrus.Fields{"conf_id": conf, "linked": confID, "code": code}).Info("conference linked by REFER")
		} else {
			code = l.transferOut(target, hdrs)
			log.WithFields(logrus.Fields{"conf_id": conf, "code": code}).Info("REFER target invited into the conference")
		}
		l.notify(seq, code, true)
		return
	}
	if confID, ok := l.s.ownConference(target); ok {
		if err := l.moveTo(confID); err != nil {
			code, _ = status(err)
			log.WithError(err).WithField("code", code).Info("transfer into conference failed")
		} else {
			code = 200
			log.WithField("conf_id", confID).Info("call moved to conference")
		}
		l.notify(seq, code, true)
		return
	}
	code = l.transferOut(target, hdrs)
	l.notify(seq, code, true)
	if code != 200 {
		log.WithField("code", code).Info("transfer target failed; the call stays")
		return
	}
	log.Info("call transferred")
	l.end(endCause{bye: true, reason: `SIP;cause=200;text="call transferred"`, keepPartner: true,
		release: session.Release{By: session.FrontSIP, Reason: "transferred"}})
}

// notify reports transfer progress to the referrer (RFC 3515 §2.4.5).
func (l *leg) notify(seq uint32, code int, final bool) {
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	body := fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reasonPhrase(code))
	ctx, cancel := context.WithTimeout(context.Background(), gosip.Timer_F)
	defer cancel()
	res, err := l.request(ctx, gosip.NOTIFY, "message/sipfrag;version=2.0", []byte(body),
		gosip.NewHeader("Event", "refer;id="+strconvU(seq)), gosip.NewHeader("Subscription-State", state))
	switch {
	case err != nil:
		l.logger().WithError(err).Debug("NOTIFY failed")
	case res.StatusCode >= 300:
		l.logger().WithField("code", res.StatusCode).Debug("NOTIFY refused")
	}
}

// ownConference reports whether u names one of our conferences.
func (s *Server) ownConference(u gosip.Uri) (string, bool) {
	if !s.isOurAddress(u.Host, u.Port) {
		return "", false
	}
	m, ok, err := route(s.rules, u.User)
	if !ok || err != nil || m.Action != ActionConference {
		return "", false
	}
	return m.ConfID, true
}

// isOurAddress reports whether host:port reaches this gateway.
func (s *Server) isOurAddress(host string, port int) bool {
	if port == 0 {
		port = 5060
	}
	s.mu.Lock()
	var lis []gosip.Addr
	for _, t := range []*transport{s.udp, s.tcp} {
		if t != nil {
			lis = append(lis, t.laddr)
		}
	}
	s.mu.Unlock()
	if !slices.ContainsFunc(lis, func(a gosip.Addr) bool { return a.Port == port }) {
		return false
	}
	if strings.EqualFold(host, s.host) {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		return false
	}
	for _, a := range lis {
		if a.Port != port {
			continue
		}
		if a.IP != nil && a.IP.Equal(ip) {
			return true
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			if ip.IsLoopback() {
				return true
			}
			addrs, _ := net.InterfaceAddrs()
			for _, ia := range addrs {
				if n, ok := ia.(*net.IPNet); ok && n.IP.Equal(ip) {
					return true
				}
			}
		}
	}
	return false
}

// moveTo moves the leg's connection into conference confID (created when
// new): same dialog, same port. On failure the leg stays where it was.
func (l *leg) moveTo(confID string) error {
	s := l.s
	l.mu.Lock()
	if l.state == stateEnded || l.connID == "" {
		l.mu.Unlock()
		return errLegEnded
	}
	connID := l.connID
	conn, err := s.table.Connection(connID)
	if err != nil {
		l.mu.Unlock()
		return err
	}
	old := conn.ConferenceID
	if old == confID {
		l.mu.Unlock()
		return nil
	}
	oldKind := session.KindConference
	if old != "" {
		if cf, err := s.table.Conference(old); err == nil {
			oldKind = cf.Kind
		}
	}
	wasEcho := l.action == ActionEcho
	restore := func() {
		if old != "" {
			var err error
			if oldKind == session.KindBridge {
				_, err = s.table.JoinConference(old, connID, session.MemberAttrs{})
			} else {
				_, err = s.table.JoinOrCreate(old, session.KindConference, connID, session.MemberAttrs{})
			}
			if err != nil {
				l.logger().WithError(err).WithField("conf_id", old).Warn("transfer failed and the call could not go back")
			}
		}
		if wasEcho {
			if _, err := s.table.ModifyConnection(connID, session.ConnectionParams{Mode: modeFor(ActionEcho, l.media.dir)}); err != nil {
				l.logger().WithError(err).Warn("restoring echo after failed transfer")
			}
		}
	}
	if wasEcho {
		if _, err := s.table.ModifyConnection(connID, session.ConnectionParams{Mode: modeFor(ActionConference, l.media.dir)}); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	if old != "" {
		if err := s.table.LeaveConference(old, connID, session.Release{By: session.FrontSIP, Reason: "transfer"}); err != nil {
			restore()
			l.mu.Unlock()
			return err
		}
	}
	if _, err := s.table.JoinOrCreate(confID, session.KindConference, connID, session.MemberAttrs{}); err != nil {
		restore()
		l.mu.Unlock()
		return err
	}
	l.action = ActionConference
	partner := l.partner
	l.partner = nil
	l.saveLocked()
	l.mu.Unlock()
	if partner != nil {
		unlink(l, partner)
		partner.end(endCause{bye: true, reason: `SIP;cause=200;text="other party transferred"`,
			release: session.Release{By: session.FrontSIP, Reason: "bridge partner transferred"}})
	}
	return nil
}

// transferOut calls target and, once it answers, puts the new leg where
// the referrer's was (its conference, its bridge partner, or its echo).
// It returns the status to NOTIFY; on failure the referrer keeps its place.
func (l *leg) transferOut(target gosip.Uri, hdrs []gosip.Header) int {
	s := l.s
	l.mu.Lock()
	if l.state == stateEnded || l.connID == "" {
		l.mu.Unlock()
		return 487
	}
	connID, action, codec, ptime := l.connID, l.action, l.media.codec, l.media.ptime
	p := l.partner
	l.mu.Unlock()
	display, user := "", userAgent
	if p != nil { // call the target as the party that stays
		p.mu.Lock()
		if p.dlg.to != nil {
			display, user = p.dlg.to.DisplayName, p.dlg.to.Address.User
		}
		p.mu.Unlock()
	}

	conn, err := s.table.Connection(connID)
	if err != nil {
		return 487
	}
	confID, kind := conn.ConferenceID, session.Kind("")
	if confID != "" {
		if cf, err := s.table.Conference(confID); err == nil {
			kind = cf.Kind
		}
	}
	codecs := []format{codec}
	if kind == session.KindConference {
		codecs = configuredFormats(s.codecs)
	}
	c, err := s.newLeg(newTag(), uuid.NewString(), true)
	if err != nil {
		code, _ := status(err)
		return code
	}
	connC, err := s.table.CreateConnection(session.ConnectionParams{Codec: codecs[0].Name, Ptime: ptime,
		Mode: session.ModeSendRecv, Owner: session.FrontSIP, CallID: c.callID, Tag: c.tag})
	if err != nil {
		c.end(endCause{})
		code, _ := status(err)
		return code
	}
	if !c.own(connC.ID, action) {
		s.orphan(connC.ID)
		return 500
	}
	c.mu.Lock()
	c.media.local, c.media.dir, c.media.ptime = connC.Local, dirSendRecv, connC.Ptime
	c.media.crypto = offerSRTP(s.table.SRTPMode())
	offer := c.sdpLocked(append(slices.Clone(codecs), defaultTE), nil)
	c.mu.Unlock()

	stop := context.AfterFunc(l.context(), c.stopWork) // the referrer hung up: cancel the INVITE
	res, err := c.dial(target, offer, display, user, hdrs, nil)
	stop()
	if err != nil {
		c.end(endCause{release: session.Release{By: session.FrontSIP, Reason: "transfer target failed"}})
		return dialFailure(err, res)
	}
	if _, _, _, err := c.takeAnswer(res, codecs); err != nil {
		code, _ := status(err)
		c.end(endCause{bye: true, reason: fmt.Sprintf(`SIP;cause=%d;text="%s"`, code, reasonPhrase(code)),
			release: session.Release{By: session.FrontSIP, Reason: "transfer answer unusable"}})
		return code
	}

	l.mu.Lock()
	if l.state == stateEnded {
		l.mu.Unlock()
		c.end(endCause{bye: true, reason: `SIP;cause=487;text="referrer hung up"`,
			release: session.Release{By: session.FrontSIP, Reason: "referrer hung up"}})
		return 487
	}
	var partner *leg
	switch kind {
	case session.KindBridge:
		err = s.table.LeaveConference(confID, connID, session.Release{By: session.FrontSIP, Reason: "transfer"})
		if err == nil {
			if _, err = s.table.JoinConference(confID, connC.ID, session.MemberAttrs{}); err != nil {
				if _, rerr := s.table.JoinConference(confID, connID, session.MemberAttrs{}); rerr != nil {
					l.logger().WithError(rerr).Warn("transfer failed and the call could not go back")
				}
			}
		}
		if err == nil {
			partner, l.partner = l.partner, nil
			l.saveLocked()
		}
	case session.KindConference:
		_, err = s.table.JoinConference(confID, connC.ID, session.MemberAttrs{})
	default:
		_, err = s.table.ModifyConnection(connC.ID, session.ConnectionParams{Mode: modeFor(action, dirSendRecv)})
	}
	l.mu.Unlock()
	if err != nil {
		code, _ := status(err)
		l.logger().WithError(err).Info("transfer target answered but could not take the call's place")
		c.end(endCause{bye: true, reason: fmt.Sprintf(`SIP;cause=%d;text="%s"`, code, reasonPhrase(code)),
			release: session.Release{By: session.FrontSIP, Reason: "transfer placement failed"}})
		return code
	}
	if partner != nil && !link(c, partner) {
		c.end(endCause{bye: true, reason: `SIP;cause=487;text="other party hung up"`,
			release: session.Release{By: session.FrontSIP, Reason: "bridge partner gone"}})
	}
	l.logger().WithFields(logrus.Fields{"conn_id": connC.ID, "conf_id": confID}).Debug("transfer target took the call's place")
	return 200
}
