// Package sip is the SIP front of the gateway, on github.com/emiago/sipgo:
// calls join conferences, are bridged (B2BUA) to a target through the RTP
// proxy, or have their media looped back, according to ordered routes on
// the Request-URI user. Every way a call ends — BYE, CANCEL, a missing ACK,
// a completed transfer, a media timeout, a release by another front, or
// shutdown — goes through one release path per call leg (leg.end), which
// releases the media with session DeleteConnection exactly once.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
	"github.com/mediagw/mediagw/session"
)

// userAgent names the gateway in Server and User-Agent headers.
const userAgent = "mediagw"

// allowed is what we put in Allow headers.
var allowed = []gosip.RequestMethod{gosip.INVITE, gosip.ACK, gosip.BYE, gosip.CANCEL, gosip.OPTIONS,
	gosip.REFER, gosip.NOTIFY, gosip.INFO, gosip.UPDATE}

var allowHeader = func() string {
	names := make([]string, len(allowed))
	for i, m := range allowed {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}()

// setDefaultLogger sets sipgo's package-wide logger once (the first server's).
var setDefaultLogger sync.Once

// Server is the SIP front.
type Server struct {
	cfg    Config
	rules  []rule
	codecs []string // conference.codecs: what conference and echo legs may use
	table  *session.Table
	log    *logrus.Entry
	met    *metrics
	host   string // advertised in Via and Contact

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	bg  work // BYEs, NOTIFYs and transfers in flight
	lim limiter
	// refusalLog lets one refusal line per source per interval through (refusal.go).
	refusalLog *ratelog.Limiter
	ovl        *overload // sip.overload (overload.go)
	ovlOnce    sync.Once
	answered   *answered // final responses sent on UDP, for retransmitted requests
	adm        *admission
	rate       *rateLimiter                    // nil: sip.rate off
	cert       atomic.Pointer[tls.Certificate] // sip.tls, swapped by ReloadTLS
	unc        *unconfirmedSet
	state      State // where dialogs are kept (persist.go); nil: not kept. Set by Restore, before Serve

	mu       sync.Mutex          // guards the fields below
	legs     map[string]*leg     // call legs by our dialog tag
	lost     []*leg              // restored dialogs without media, to hang up once their transport serves (persist.go)
	pins     map[string]*pinGate // callers at a conference PIN, by ConnectionId (pin.go)
	menu     menuState           // keys of the DTMF menu so far (menu.go)
	inbound  int                 // legs of calls we answered (not uac): sip.max_calls
	udp      *transport          // set by ServeUDP
	tcp      *transport          // set by ServeTCP
	tcpLimit *limitListener      // set by ServeTCP
	tls      *transport          // set by ServeTLS
	closing  bool                // Shutdown has begun
}

// transport is one listening transport and the client that sends from it.
type transport struct {
	client  *sipgo.Client
	laddr   gosip.Addr // the listener (UDP requests are sent from it)
	contact gosip.ContactHeader
	conn    net.PacketConn // UDP: the listening socket, for the responses we send ourselves
}

// New builds the SIP front. codecs is conference.codecs; routes are tried
// in order. Metrics are registered on reg when it is not nil.
func New(cfg Config, routes []Route, codecs []string, table *session.Table, log *logrus.Entry, reg prometheus.Registerer) (*Server, error) {
	if table == nil {
		return nil, errors.New("sip: nil session table")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules, err := compileRoutes(routes)
	if err != nil {
		return nil, err
	}
	adm, err := newAdmission(cfg)
	if err != nil {
		return nil, err
	}
	if len(codecs) == 0 {
		codecs = session.DefaultConferenceConfig().Codecs
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(discardWriter{})
		log = logrus.NewEntry(l)
	}
	log = log.WithField("component", "sip")
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("sip: metrics: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		rules:  rules,
		codecs: append([]string(nil), codecs...),
		table:  table,
		log:    log,
		met:    met,
		host:   advertisedHost(cfg),
		legs:   make(map[string]*leg),
		pins:   make(map[string]*pinGate),
		menu:   menuState{keys: map[string]menuKeys{}},

		answered:   newAnswered(),
		adm:        adm,
		refusalLog: newRefusalLog(),
		rate:       newRateLimiter(cfg.Rate),
		ovl:        &overload{delay: cfg.Overload.Delay, queue: cfg.Overload.QueueDelay, log: log, wake: make(chan struct{}, 1)},
	}
	total := cfg.Unconfirmed.Total
	if total == 0 {
		total = table.FreePorts() / 4 // half of the port pairs
	}
	s.unc = newUnconfirmedSet(cfg.Unconfirmed, total)
	slogger := newSlogLogger(log.WithField("component", "sipgo"))
	setDefaultLogger.Do(func() { gosip.SetDefaultLogger(slogger) }) // sipgo logs some events through its package default
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(userAgent),
		sipgo.WithUserAgentHostname(s.host),
		sipgo.WithUserAgentTransactionLayerOptions(gosip.WithTransactionLayerLogger(slogger),
			gosip.WithTransactionLayerUnhandledResponseHandler(s.onStrayResponse)),
		sipgo.WithUserAgentTransportLayerOptions(gosip.WithTransportLayerLogger(slogger)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	handlers := map[gosip.RequestMethod]sipgo.RequestHandler{
		gosip.INVITE:  s.onInvite,
		gosip.ACK:     s.onAck,
		gosip.BYE:     s.onBye,
		gosip.CANCEL:  s.onCancel,
		gosip.OPTIONS: s.onOptions,
		gosip.REFER:   s.onRefer,
		gosip.NOTIFY:  s.onNotify,
		gosip.INFO:    s.onInfo,
		gosip.UPDATE:  s.onUpdate,
	}
	for method, h := range handlers {
		s.srv.OnRequest(method, s.counted(h))
	}
	s.srv.OnNoRoute(s.counted(s.onUnsupported))
	table.Subscribe(s.onTableEvent)
	return s, nil
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// advertisedHost is the host we put in Via and Contact: external_host, else
// the first specific listen address, else the primary IP.
func advertisedHost(cfg Config) string {
	if cfg.ExternalHost != "" {
		return cfg.ExternalHost
	}
	for _, l := range cfg.Listen {
		if _, addr, err := ParseListen(l); err == nil {
			host, _, _ := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
				return host
			}
		}
	}
	return primaryIP()
}

// primaryIP is the first global unicast address of an interface that is up,
// or 127.0.0.1.
func primaryIP() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// udpReadBuffer is the receive buffer asked for on the SIP UDP socket.
const udpReadBuffer = 4 << 20

// ServeUDP serves SIP on a UDP socket created by the caller until ctx ends
// (the socket is then closed) and returns nil then.
func (s *Server) ServeUDP(ctx context.Context, conn net.PacketConn) error {
	t, err := s.newTransport("UDP", conn.LocalAddr())
	if err != nil {
		return err
	}
	t.conn = conn
	served := conn
	if c, ok := conn.(*net.UDPConn); ok {
		// A burst of requests (thousands of calls a second arrive in
		// clumps) must wait in the socket, not be dropped and retransmitted
		// 500 ms later; the kernel caps this at net.core.rmem_max.
		if err := c.SetReadBuffer(udpReadBuffer); err != nil {
			s.log.WithError(err).Warn("SIP UDP read buffer not enlarged")
		}
		l := &udpListener{UDPConn: c, peers: make(map[netip.AddrPort]*peerAddr), ovl: s.ovl,
			onShed: func(src netip.AddrPort) {
				s.reject(RefusedOverload, src.String(), func() *logrus.Entry { return s.log.WithField("transport", "UDP") },
					"behind (sip.overload): new INVITE answered 503 at the socket")
			}}
		if s.ovl.queue > 0 {
			if stampReceives(c) {
				l.oob = make([]byte, stampOOB)
			} else {
				s.log.Warn("SIP UDP socket gives no arrival times: sip.overload.queue_delay does nothing")
			}
		}
		served = l
		s.ovlOnce.Do(func() { go s.ovl.watch(ctx) })
	}
	s.mu.Lock()
	s.udp = t
	s.mu.Unlock()
	s.log.WithField("listen", conn.LocalAddr().String()).Info("SIP listening on UDP")
	s.hangUpLost("UDP")
	return s.serve(ctx, conn, func() error { return s.srv.ServeUDP(served) })
}

// udpListener is the SIP UDP socket as sipgo reads it. sipgo asks each
// datagram's source as a net.Addr and formats it (a *net.UDPAddr, its IP
// and the string: five allocations a datagram); here a source's address
// and string are made once and reused.
type udpListener struct {
	*net.UDPConn

	mu    sync.Mutex // guards peers (sipgo has one reader; the lock is uncontended)
	peers map[netip.AddrPort]*peerAddr

	ovl    *overload            // shedding: new INVITEs answered 503 here (overload.go)
	onShed func(netip.AddrPort) // counts and logs a shed INVITE
	resp   []byte               // the 503 being sent (the reader's own)
	oob    []byte               // the arrival stamp of the datagram read; nil: not stamped
}

// maxPeers bounds the remembered sources; the map starts afresh when full.
const maxPeers = 4096

// peerAddr is a datagram's source, formatted as net.UDPAddr formats it.
type peerAddr struct {
	ap netip.AddrPort
	s  string
}

func (a *peerAddr) Network() string { return "udp" }
func (a *peerAddr) String() string  { return a.s }

func (c *udpListener) ReadFrom(b []byte) (int, net.Addr, error) {
	var n int
	var ap netip.AddrPort
	for {
		var err error
		late := false
		if c.oob != nil {
			var oobn int
			n, oobn, _, ap, err = c.UDPConn.ReadMsgUDPAddrPort(b, c.oob)
			if at, ok := arrival(c.oob[:oobn]); ok {
				late = time.Now().UnixNano()-at > int64(c.ovl.queue)
			}
		} else {
			n, ap, err = c.UDPConn.ReadFromUDPAddrPort(b)
		}
		if err != nil {
			return n, nil, err
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if c.ovl == nil {
			break
		}
		c.ovl.arrived()
		if !c.shed(b[:n], ap, late) {
			break
		}
	}
	c.mu.Lock()
	a := c.peers[ap]
	if a == nil {
		if len(c.peers) >= maxPeers {
			clear(c.peers)
		}
		a = &peerAddr{ap: ap, s: ap.String()}
		c.peers[ap] = a
	}
	c.mu.Unlock()
	return n, a, nil
}

// shed answers a new INVITE with a stateless 503 while the gateway is
// behind (the scheduler's door is on, or late: the INVITE waited in the
// socket past sip.overload.queue_delay), and drops the ACKs of those 503s;
// true: the datagram is done.
func (c *udpListener) shed(p []byte, src netip.AddrPort, late bool) bool {
	if c.ovl.shed.Load() > 0 && shedAck(p) {
		return true
	}
	if !c.ovl.on.Load() && !late || !initialInvite(p) {
		return false
	}
	seq := c.ovl.shed.Add(1)
	resp, ok := appendShed503(c.resp[:0], p, seq)
	c.resp = resp
	if !ok {
		return false // sipgo answers what it can of a malformed one
	}
	_, _ = c.UDPConn.WriteToUDPAddrPort(resp, src)
	c.onShed(src)
	return true
}

// ServeTCP serves SIP on a TCP listener created by the caller until ctx
// ends (the listener is then closed) and returns nil then.
func (s *Server) ServeTCP(ctx context.Context, ln net.Listener) error {
	t, err := s.newTransport("TCP", ln.Addr())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tcp = t
	s.mu.Unlock()
	s.log.WithField("listen", ln.Addr().String()).Info("SIP listening on TCP")
	limited := newLimitListener(ln, s.cfg.TCP, func(src string) {
		s.reject(RefusedTCPLimit, src, func() *logrus.Entry { return s.log.WithField("transport", "TCP") },
			"TCP connection over sip.tcp's bounds closed")
	})
	limited.frame = true
	limited.broken = func(src string) {
		s.reject(RefusedMalformed, src, func() *logrus.Entry { return s.log.WithField("transport", "TCP") },
			"TCP stream is not SIP: closing it after the requests before it are answered")
	}
	s.mu.Lock()
	s.tcpLimit = limited
	s.mu.Unlock()
	s.hangUpLost("TCP")
	return s.serve(ctx, ln, func() error { return s.srv.ServeTCP(limited) })
}

func (s *Server) serve(ctx context.Context, c interface{ Close() error }, run func() error) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Close()
		case <-stop:
		}
	}()
	err := run()
	if ctx.Err() != nil || s.isClosing() || errors.Is(err, net.ErrClosed) && ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("listener stopped")
	}
	return fmt.Errorf("sip: %w", err)
}

func (s *Server) newTransport(network string, addr net.Addr) (*transport, error) {
	host, port, err := gosip.ParseAddr(addr.String())
	if err != nil {
		return nil, fmt.Errorf("sip: listener address %s: %w", addr, err)
	}
	t := &transport{laddr: gosip.Addr{IP: net.ParseIP(host), Port: port, Hostname: host}}
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(s.host), sipgo.WithClientPort(port),
		sipgo.WithClientLogger(newSlogLogger(s.log.WithField("component", "sipgo")))}
	if network == "UDP" {
		opts = append(opts, sipgo.WithClientConnectionAddr(addr.String()))
	}
	if t.client, err = sipgo.NewClient(s.ua, opts...); err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	t.contact = gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: userAgent, Host: s.host, Port: port}}
	switch network {
	case "TCP":
		t.contact.Address.UriParams = gosip.NewParams()
		t.contact.Address.UriParams.Add("transport", "tcp")
	case "TLS":
		// A dialog over TLS is reached by sips: (RFC 3261 §12.1.1 asks a
		// SIPS Contact when the request used a SIPS URI; over TLS we always
		// give one, so in-dialog requests stay on TLS).
		t.contact.Address.Scheme = "sips"
		t.contact.Address.UriParams = gosip.NewParams()
		t.contact.Address.UriParams.Add("transport", "tls")
	}
	return t, nil
}

// transportFor returns the listening transport for a network name
// ("UDP", "tcp", ...), or nil when we do not serve it.
func (s *Server) transportFor(network string) *transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.EqualFold(network, "TLS") {
		return s.tls
	}
	if gosip.IsReliable(network) {
		return s.tcp
	}
	return s.udp
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown ends every call still up with a BYE (the session table has
// released their media already when it was shut down first) and waits,
// bounded by ctx, for the BYEs and transfers in flight to finish.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	legs := make([]*leg, 0, len(s.legs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	for _, l := range legs {
		l.end(endCause{bye: true, reason: releaseReason(session.Release{Code: session.CodeDraining}),
			release: session.Release{By: session.FrontSIP, Code: session.CodeDraining, Reason: "shutdown"}, status: 503})
	}
	if err := s.bg.wait(ctx); err != nil {
		s.log.WithError(err).Warn("shutdown: requests still in flight")
	}
	s.log.WithField("calls", len(legs)).Info("SIP front stopped")
	_ = s.ua.Close()
}

// Calls reports how many call legs are up (for tests and diagnostics).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.legs)
}

// counted wraps a handler with the request counter. A retransmission of a
// request we have answered already is answered again from s.answered and
// goes no further (sipgo ends its new transaction when we return).
func (s *Server) counted(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *gosip.Request, tx gosip.ServerTransaction) {
		if s.answerAgain(req) {
			return
		}
		s.met.request(req.Method)
		if !s.admit(req, tx) {
			return
		}
		if !req.IsAck() {
			growStack()
		}
		h(req, tx)
	}
}

// stackIndex is always 0; the compiler cannot know it.
var stackIndex = 0

// growStack grows the calling goroutine's stack, while it is still
// shallow, to what a request handler needs. sipgo runs every request in a
// new goroutine, whose stack starts at 2 KiB and would otherwise double
// two or three times deep inside the handler, each time copying and
// adjusting every frame (~8% of the CPU at 12000 calls/s). The runtime
// grows a stack at once to fit the frame that overflowed it, so one frame
// of 12 KiB here costs a single early copy of a few frames.
//
//go:noinline
func growStack() byte {
	var frame [12 << 10]byte
	return frame[stackIndex]
}

// onTableEvent hears every release of the session table. A SIP leg whose
// connection another front (or the media-timeout sweeper, or shutdown)
// released is hung up with a BYE, off the releasing goroutine.
func (s *Server) onTableEvent(ev session.Event) {
	if ev.Type == session.OperationComplete && ev.Op != nil && ev.Op.State == pinState && ev.Op.Action == "GatherDigits" {
		r := *ev.Op
		s.bg.Go(func() { s.pinEntered(r) })
		return
	}
	if ev.Type == session.DigitReceived && !ev.DigitEnd && ev.ConferenceID != "" && len(s.cfg.Menu) > 0 {
		id, conf, digit := ev.Connection.ID, ev.ConferenceID, ev.Digit
		s.bg.Go(func() { s.menuDigit(id, conf, digit) })
		return
	}
	if ev.Type != session.ConnectionReleased || ev.Connection.Owner != session.FrontSIP {
		return
	}
	s.mu.Lock()
	delete(s.pins, ev.Connection.ID)
	s.mu.Unlock()
	s.menu.mu.Lock()
	delete(s.menu.keys, ev.Connection.ID)
	s.menu.mu.Unlock()
	l := s.leg(ev.Connection.Tag)
	if l == nil {
		return
	}
	connID := ev.Connection.ID
	s.bg.Go(func() {
		l.end(endCause{bye: true, gone: connID, reason: releaseReason(ev.Release), status: releaseStatus(ev.Release)})
	})
}

// releaseStatus answers a pending INVITE whose media was released under it.
func releaseStatus(r session.Release) int {
	if r.Code == session.CodeInactivity {
		return 408
	}
	return 503
}

func (s *Server) leg(tag string) *leg {
	if tag == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legs[tag]
}

func (s *Server) addLeg(l *leg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return session.ErrDraining
	}
	if !l.uac {
		if s.cfg.MaxCalls > 0 && s.inbound >= s.cfg.MaxCalls {
			return errMaxCalls
		}
		s.inbound++
	}
	s.legs[l.tag] = l
	return nil
}

func (s *Server) forget(l *leg) {
	s.mu.Lock()
	if s.legs[l.tag] == l {
		delete(s.legs, l.tag)
		if !l.uac {
			s.inbound--
		}
	}
	s.mu.Unlock()
}

// dialogLeg finds the leg an in-dialog request belongs to: our tag in To,
// the same Call-ID and, once known, the remote tag in From.
func (s *Server) dialogLeg(req *gosip.Request) *leg {
	to, from, cid := req.To(), req.From(), req.CallID()
	if to == nil || from == nil || cid == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	l := s.leg(tag)
	if l == nil || l.callID != cid.Value() {
		return nil
	}
	ftag, _ := from.Params.Get("tag")
	if !l.remoteTagIs(ftag) {
		return nil
	}
	return l
}

// Headers our messages share: sipgo only reads the headers of a message
// it sends, so one copy serves every response.
var (
	serverHdr      = gosip.NewHeader("Server", userAgent)
	allowHdr       = gosip.NewHeader("Allow", allowHeader)
	supportedHdr   = gosip.NewHeader("Supported", "")
	sdpContentType = gosip.NewHeader("Content-Type", "application/sdp")
)

// decorate adds the headers every response of ours carries.
func decorate(res *gosip.Response) {
	res.AppendHeader(serverHdr)
	res.AppendHeader(allowHdr)
	res.AppendHeader(supportedHdr)
}

// respond sends a response built as a sipgo response through its
// transaction, and counts it.
func (s *Server) respond(tx gosip.ServerTransaction, res *gosip.Response) error {
	decorate(res)
	s.met.response(res.StatusCode)
	return tx.Respond(res)
}

// answerAgain answers a retransmission of a request we answered with
// sendDirect with the same bytes; false when req is no such request.
func (s *Server) answerAgain(req *gosip.Request) bool {
	if req.IsAck() || gosip.IsReliable(req.Transport()) {
		return false
	}
	k, ok := s.answered.key(req)
	if !ok {
		return false
	}
	return s.resend(k)
}

// resend sends the answer remembered for the transaction k again.
func (s *Server) resend(k txKey) bool {
	wire, dest, ok := s.answered.get(k)
	if !ok {
		return false
	}
	if t := s.transportFor("UDP"); t != nil && t.conn != nil {
		if err := t.writeTo(wire, dest); err != nil {
			s.log.WithError(err).WithField("remote", dest.String()).Debug("response retransmission failed")
		}
	}
	return true
}

// retransmit sends the final response to req again: from s.answered when
// sendDirect sent it (res nil), else through its transaction.
func (s *Server) retransmit(tx gosip.ServerTransaction, req *gosip.Request, res *gosip.Response) error {
	if res == nil {
		if k, ok := s.answered.key(req); ok {
			s.resend(k)
		}
		return nil
	}
	return tx.Respond(res)
}

// writeTo sends one datagram from the UDP listener.
func (t *transport) writeTo(b []byte, dest netip.AddrPort) error {
	if c, ok := t.conn.(*net.UDPConn); ok {
		_, err := c.WriteToUDPAddrPort(b, dest) // no address allocated
		return err
	}
	_, err := t.conn.WriteTo(b, net.UDPAddrFromAddrPort(dest))
	return err
}

// reply answers req with a bodiless response.
func (s *Server) reply(tx gosip.ServerTransaction, req *gosip.Request, code int, hdrs ...gosip.Header) {
	if _, err := s.send(tx, req, response{code: code, hdrs: hdrs}); err != nil {
		s.log.WithError(err).WithFields(logrus.Fields{"call_id": callID(req), "code": code}).Debug("sending response failed")
	}
}

// fail answers req with the status for err, logging why once.
func (s *Server) fail(tx gosip.ServerTransaction, req *gosip.Request, err error) {
	code, _ := status(err)
	s.refused(func() *logrus.Entry {
		return s.log.WithError(err).WithFields(logrus.Fields{"call_id": callID(req), "method": string(req.Method), "code": code})
	}, "request refused")
	s.reply(tx, req, code)
}

func callID(m gosip.Message) string {
	if h := m.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func (s *Server) onStrayResponse(res *gosip.Response) {
	s.log.WithFields(logrus.Fields{"call_id": callID(res), "code": res.StatusCode}).Debug("response matches no transaction (retransmission)")
}

// onOptions answers OPTIONS in and out of dialogs with our capabilities.
func (s *Server) onOptions(req *gosip.Request, tx gosip.ServerTransaction) {
	if s.table.Draining() { // probes (Kamailio's dispatcher) move new calls elsewhere
		s.reply(tx, req, 503, gosip.NewHeader("Retry-After", "60"))
		return
	}
	s.reply(tx, req, 200, gosip.NewHeader("Accept", "application/sdp"))
}

// onCancel sees only CANCELs that match no pending INVITE (the
// transaction layer answers the others with 200 and the INVITE with 487).
func (s *Server) onCancel(req *gosip.Request, tx gosip.ServerTransaction) {
	s.reply(tx, req, 481)
}

// onUnsupported answers methods we do not implement.
func (s *Server) onUnsupported(req *gosip.Request, tx gosip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	s.reply(tx, req, 405)
}

// onNotify: we subscribe to nothing; NOTIFY in a known dialog is
// acknowledged, outside one it is 481.
func (s *Server) onNotify(req *gosip.Request, tx gosip.ServerTransaction) {
	if l := s.dialogLeg(req); l == nil {
		s.reply(tx, req, 481)
		return
	}
	s.reply(tx, req, 200)
}

// work counts background tasks so that Shutdown can wait for them.
type work struct {
	mu   sync.Mutex // guards n and zero
	n    int
	zero chan struct{} // closed when n drops to 0
}

func (w *work) Go(f func()) {
	w.mu.Lock()
	if w.n == 0 {
		w.zero = make(chan struct{})
	}
	w.n++
	w.mu.Unlock()
	go func() {
		defer w.done()
		f()
	}()
}

func (w *work) done() {
	w.mu.Lock()
	w.n--
	if w.n == 0 {
		close(w.zero)
	}
	w.mu.Unlock()
}

func (w *work) wait(ctx context.Context) error {
	w.mu.Lock()
	if w.n == 0 {
		w.mu.Unlock()
		return nil
	}
	z, n := w.zero, w.n
	w.mu.Unlock()
	select {
	case <-z:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d tasks: %w", n, ctx.Err())
	}
}

// strconvU is strconv.FormatUint for uint32.
func strconvU(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// refusalsPerSecond bounds the log lines about refused requests (anyone
// can send those, e.g. a scanner).
const refusalsPerSecond = 10

// limiter lets a few log lines a second through and counts the rest.
type limiter struct {
	mu         sync.Mutex // guards the fields below
	second     int64      // unix second of the current window
	n          int        // lines let through in it
	suppressed int        // lines held back since the last one let through
}

func (r *limiter) allow(now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.second {
		r.second, r.n = sec, 0
	}
	if r.n >= refusalsPerSecond {
		r.suppressed++
		return false, 0
	}
	r.n++
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}

// refused logs a refusal of remote input at info level, rate-limited. The
// entry is built only for a line that is logged (under overload most are
// held back).
func (s *Server) refused(entry func() *logrus.Entry, msg string) {
	if !s.log.Logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	ok, held := s.lim.allow(time.Now())
	if !ok {
		return
	}
	e := entry()
	if held > 0 {
		e = e.WithField("suppressed", held)
	}
	e.Info(msg)
}
