package sip

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// legState is where a call leg is in its INVITE dialog.
type legState int

const (
	stateEarly     legState = iota // INVITE pending: no final response yet
	stateAnswered                  // 2xx sent (or received), ACK pending
	stateConfirmed                 // ACK received (or sent)
	stateEnded                     // released; nothing more happens
)

var (
	errLegEnded = errors.New("call leg ended")
	errNoAck    = errors.New("no ACK for 2xx")
)

// leg is one SIP call leg: a dialog and the session connection it owns.
// sipgo runs every request in its own goroutine; the leg's mutex makes its
// events (ACK, BYE, re-INVITE, REFER, CANCEL, table releases) take effect
// one at a time, each checking the state the previous one left. Slow work
// (waiting for an ACK, calling a transfer target) runs outside the lock and
// re-checks the state when it comes back. The leg never calls into a
// server transaction while holding mu (sipgo calls OnCancel under the
// transaction's own lock).
type leg struct {
	s      *Server
	tag    string // our dialog tag (To-tag when we answered, From-tag when we called): the key in Server.legs
	callID string
	uac    bool          // we sent the INVITE (bridge target, transfer target)
	done   chan struct{} // closed when the leg has ended
	up     chan struct{} // closed when the dialog is confirmed (ACK received or sent)

	cancelled atomic.Bool // a CANCEL answered the INVITE with 487

	mu          sync.Mutex    // guards the fields below
	unconfirmed *list.Element // in Server.unc until the ACK (or the end); nil for uac legs
	state       legState
	status      int    // the final response owed to a pending INVITE once ended early
	connID      string // our session connection; "" once released
	action      string // what the media does: conference, echo or bridge
	partner     *leg   // B2BUA: the leg at the other end of the bridge
	dlg         dialog
	media       mediaState
	acks        map[uint32]chan *gosip.Request // 2xx awaiting an ACK, by CSeq
	inviting    bool                           // an offer/answer exchange of this dialog is in progress
	invited     chan struct{}                  // closed when that exchange ends
	referring   bool                           // a REFER is being carried out
	ctx         context.Context                // made by context(); cancelled when the leg ends
	cancel      context.CancelFunc
	rec         struct{ from, to, target string } // the dialog's headers as written to the state (persist.go)
}

// mediaState is the offer/answer state of a leg.
type mediaState struct {
	sessID  uint64
	version uint64
	codec   format  // negotiated codec (with the remote's payload type)
	te      *format // telephone-event, when negotiated
	dir     direction
	ptime   time.Duration
	local   netip.AddrPort
	crypto  []crypto // our a=crypto lines (offered, or the one answered); none for plain RTP
}

// dialog is what we need to send requests inside a dialog (RFC 3261 §12).
type dialog struct {
	from      *gosip.FromHeader // our URI and tag
	to        *gosip.ToHeader   // their URI and tag
	target    gosip.Uri         // their Contact
	routes    []string          // route set, in the order to send
	seq       uint32            // our CSeq
	remoteSeq uint32            // their last CSeq
	transport string            // "UDP" or "TCP"
	dest      string            // reliable transports: their address, to reuse the connection
}

func newTag() string { return uuid.NewString() }

// newLeg makes a leg and registers it; the caller fills the rest.
func (s *Server) newLeg(tag, callID string, uac bool) (*leg, error) {
	l := &leg{s: s, tag: tag, callID: callID, uac: uac, done: make(chan struct{}), up: make(chan struct{}), invited: make(chan struct{}),
		acks: make(map[uint32]chan *gosip.Request)}
	l.media.sessID = uint64(rand.Uint32())
	l.media.version = uint64(rand.Uint32() >> 8)
	if err := s.addLeg(l); err != nil {
		return nil, err
	}
	return l, nil
}

// logger is the leg's log entry (made when something is logged: most
// calls log nothing).
func (l *leg) logger() *logrus.Entry { return l.s.log.WithField("call_id", l.callID) }

// context is cancelled when the leg ends: work done for the leg (outbound
// INVITEs) runs under it. It is made on first use.
func (l *leg) context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		l.ctx, l.cancel = context.WithCancel(context.Background())
		if l.state == stateEnded {
			l.cancel()
		}
	}
	return l.ctx
}

// stopWork cancels the leg's context, if it was made.
func (l *leg) stopWork() {
	l.mu.Lock()
	cancel := l.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (l *leg) remoteTagIs(tag string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dlg.to == nil {
		return true // dialog not established yet (early)
	}
	t, _ := l.dlg.to.Params.Get("tag")
	return t == tag
}

// endCause says how a leg ends.
type endCause struct {
	bye         bool            // send BYE to the remote party (if the dialog got a 2xx)
	reason      string          // Reason header of that BYE
	release     session.Release // how we release our connection
	gone        string          // connection the table released already (not deleted again)
	status      int             // final response owed to a pending INVITE (default 487)
	keepPartner bool            // the partner was handed over (transfer): do not end it
}

// end is the one release path of a leg: it releases the leg's connection
// through session DeleteConnection (unless the table released it already),
// sends BYE when asked, and ends the bridge partner. It runs once; later
// calls do nothing.
func (l *leg) end(c endCause) {
	l.mu.Lock()
	if l.state == stateEnded || c.gone != "" && c.gone != l.connID {
		l.mu.Unlock()
		return
	}
	prev := l.state
	l.state = stateEnded
	l.status = c.status
	if l.status == 0 {
		l.status = 487
	}
	connID := l.connID
	l.connID = ""
	partner := l.partner
	l.partner = nil
	cancel := l.cancel
	unconfirmed := l.unconfirmed
	l.mu.Unlock()

	if cancel != nil {
		cancel()
	}
	close(l.done)
	l.s.unc.done(unconfirmed)
	l.s.forget(l)
	l.unsave()
	if connID != "" && connID != c.gone {
		r := c.release
		if r.By == "" {
			r.By = session.FrontSIP
		}
		if _, err := l.s.table.DeleteConnection(connID, "", r); err != nil {
			l.logger().WithError(err).WithField("conn_id", connID).Debug("release: connection already gone")
		}
	}
	if l.s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		l.logger().WithFields(logrus.Fields{"conn_id": connID, "reason": c.reason, "bye": c.bye && prev >= stateAnswered}).Debug("call leg ended")
	}
	if c.bye && prev >= stateAnswered {
		l.s.bg.Go(func() { l.bye(c.reason) })
	}
	if partner != nil && !c.keepPartner {
		partner.end(endCause{bye: true, reason: `SIP;cause=200;text="other party hung up"`,
			release: session.Release{By: session.FrontSIP, Reason: "bridge partner ended"}, status: 487})
	}
}

// confirmLocked moves an answered leg to confirmed. Caller holds mu.
func (l *leg) confirmLocked() {
	if l.state == stateAnswered || l.state == stateEarly {
		l.state = stateConfirmed
		close(l.up)
		l.s.unc.done(l.unconfirmed)
		l.saveLocked()
	}
}

// awaitConfirmed waits (bounded) for the ACK of the 2xx that set the dialog
// up: sipgo handles each request in its own goroutine, so a request the
// caller sent right after its ACK (re-INVITE, REFER) may overtake it.
func (l *leg) awaitConfirmed() {
	t := time.NewTimer(4 * gosip.T1)
	defer t.Stop()
	select {
	case <-l.up:
	case <-l.done:
	case <-t.C:
	}
}

// ended reports whether the leg has ended.
func (l *leg) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// bye sends BYE in the leg's dialog and waits for its answer.
func (l *leg) bye(reason string) {
	l.mu.Lock()
	if l.dlg.to == nil {
		l.mu.Unlock()
		return
	}
	req := l.newRequest(gosip.BYE)
	l.mu.Unlock()
	if reason != "" {
		req.AppendHeader(gosip.NewHeader("Reason", reason))
	}
	ctx, cancel := context.WithTimeout(context.Background(), gosip.Timer_F)
	defer cancel()
	res, err := l.s.do(ctx, req)
	switch {
	case err != nil:
		l.logger().WithError(err).Info("BYE got no answer")
	case res.StatusCode >= 300 && res.StatusCode != 481:
		l.logger().WithField("code", res.StatusCode).Info("BYE refused")
	}
}

// newRequest builds a request inside the leg's dialog. Caller holds mu.
func (l *leg) newRequest(method gosip.RequestMethod) *gosip.Request {
	d := &l.dlg
	d.seq++
	if method != gosip.BYE { // a BYE ends the dialog: its record goes next
		l.saveLocked()
	}
	req := gosip.NewRequest(method, *d.target.Clone())
	req.AppendHeader(gosip.HeaderClone(d.from))
	req.AppendHeader(gosip.HeaderClone(d.to))
	cid := gosip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: d.seq, MethodName: method})
	mf := gosip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range d.routes {
		req.AppendHeader(gosip.NewHeader("Route", r))
	}
	if t := l.s.transportFor(d.transport); t != nil {
		req.AppendHeader(t.contact.Clone())
	}
	req.AppendHeader(gosip.NewHeader("User-Agent", userAgent))
	req.SetTransport(d.transport)
	if rr := req.Route(); rr != nil {
		req.SetDestination(rr.Address.HostPort())
	} else if gosip.IsReliable(d.transport) && d.dest != "" {
		req.SetDestination(d.dest) // reuse their connection
	}
	return req
}

// do sends a request we built (with From, To, Call-ID and CSeq) on the
// transport it names and returns the final response.
func (s *Server) do(ctx context.Context, req *gosip.Request) (*gosip.Response, error) {
	t := s.transportFor(req.Transport())
	if t == nil {
		return nil, fmt.Errorf("no %s listener to send from", req.Transport())
	}
	if req.Body() == nil {
		req.SetBody(nil) // Content-Length: 0
	}
	if !gosip.IsReliable(req.Transport()) {
		t.laddr.Copy(&req.Laddr)
	}
	tx, err := t.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("transaction ended without a response")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// expectAck registers a 2xx to the INVITE with CSeq seq as waiting for its
// ACK. Caller holds mu.
func (l *leg) expectAck(seq uint32) chan *gosip.Request {
	ch := make(chan *gosip.Request, 1)
	l.acks[seq] = ch
	return ch
}

// takeAck hands an ACK to whoever waits for it.
func (l *leg) takeAck(req *gosip.Request) bool {
	cseq := req.CSeq()
	if cseq == nil {
		return false
	}
	l.mu.Lock()
	ch := l.acks[cseq.SeqNo]
	delete(l.acks, cseq.SeqNo)
	l.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- req
	return true
}

// send2xx sends a 2xx to an INVITE (initial or re-INVITE) and, on UDP,
// retransmits it (T1 doubling up to T2) until the ACK arrives, for at most
// 64·T1 (RFC 3261 §13.3.1.4).
func (l *leg) send2xx(tx gosip.ServerTransaction, req *gosip.Request, r response, acks chan *gosip.Request, seq uint32) (*gosip.Request, error) {
	defer func() {
		l.mu.Lock()
		if l.acks[seq] == acks {
			delete(l.acks, seq)
		}
		l.mu.Unlock()
	}()
	res, err := l.s.send(tx, req, r)
	if err != nil {
		return nil, err
	}
	// One timer: on UDP it fires for each retransmission (T1 doubling up
	// to T2), and it gives up at 64·T1.
	start, limit, interval := time.Now(), 64*gosip.T1, gosip.T1
	reliable := gosip.IsReliable(req.Transport())
	timer := time.NewTimer(limit)
	if !reliable {
		timer.Reset(interval)
	}
	defer timer.Stop()
	for {
		select {
		case ack := <-acks:
			return ack, nil
		case ack := <-tx.Acks(): // an ACK that reused the INVITE's branch
			return ack, nil
		case <-timer.C:
			elapsed := time.Since(start)
			if reliable || elapsed >= limit {
				return nil, errNoAck
			}
			if err := l.s.retransmit(tx, req, res); err != nil {
				return nil, err
			}
			interval = min(2*interval, gosip.T2)
			timer.Reset(min(interval, limit-elapsed))
		case <-l.done:
			return nil, errLegEnded
		}
	}
}

// checkSeq records the CSeq of an in-dialog request; a request older than
// the last one is out of order (RFC 3261 §12.2.2: answer 500).
func (l *leg) checkSeq(req *gosip.Request) bool {
	cseq := req.CSeq()
	if cseq == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dlg.remoteSeq != 0 && cseq.SeqNo < l.dlg.remoteSeq {
		return false
	}
	// Not written by itself (a BYE would write it just before removing the
	// dialog): the next save of the dialog carries it. After a restart an
	// older in-dialog request may then pass this check once.
	l.dlg.remoteSeq = cseq.SeqNo
	return true
}

// request sends a request in the leg's dialog, with optional body.
func (l *leg) request(ctx context.Context, method gosip.RequestMethod, contentType string, body []byte, hdrs ...gosip.Header) (*gosip.Response, error) {
	l.mu.Lock()
	if l.dlg.to == nil {
		l.mu.Unlock()
		return nil, errLegEnded
	}
	req := l.newRequest(method)
	l.mu.Unlock()
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if body != nil {
		req.AppendHeader(gosip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
	}
	return l.s.do(ctx, req)
}
