package mgcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

// Config is the yaml section `mgcp`.
type Config struct {
	Listen         string   `yaml:"listen"`          // "udp://0.0.0.0:2427"
	Domain         string   `yaml:"domain"`          // "mgw": endpoint names are <local>@<domain>
	CallAgents     []string `yaml:"call_agents"`     // CIDRs allowed to send commands
	NotifiedEntity string   `yaml:"notified_entity"` // host:port for RSIP, gateway DLCX and NTFY without N:; "" = none
	// ResponseCache bounds the responses kept for retransmitted commands.
	ResponseCache CacheConfig `yaml:"response_cache"`
}

// CacheConfig bounds the response cache: past either bound the oldest
// transactions are forgotten before their 30 s (a repeat of one is executed
// again). 0 = no bound (not for exposed gateways).
type CacheConfig struct {
	MaxEntries int `yaml:"max_entries"` // transactions remembered
	MaxBytes   int `yaml:"max_bytes"`   // their responses plus ~160 bytes each
}

// DefaultConfig is the built-in `mgcp` section (DESIGN §6).
func DefaultConfig() Config {
	return Config{
		Listen:     "udp://0.0.0.0:2427",
		Domain:     "mgw",
		CallAgents: []string{"127.0.0.0/8", "::1/128"},
		// 100,000 transactions keep the full 30 s at 1,666 commands/s and
		// over 1 s at the fastest rate measured (~100,000/s): about 40 MB.
		ResponseCache: CacheConfig{MaxEntries: 100000, MaxBytes: 64 << 20},
	}
}

// maxDatagram is the largest message a call agent must accept
// (RFC 3435 §3.5.4 MaxMGCPDatagram default); a longer answer is 533.
const maxDatagram = 4000

// slowCommand is when a command still executing gets a provisional 100.
const slowCommand = 200 * time.Millisecond

// outgoingRetransmits are the waits before re-sending a gateway-initiated
// command (RSIP, DLCX) that has no response yet; then it is given up.
var outgoingRetransmits = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// Server is the MGCP front: one UDP socket, the transaction layer and the verbs.
type Server struct {
	cfg    Config
	table  *session.Table
	log    *logrus.Entry
	met    *metrics
	agents []netip.Prefix
	notify netip.AddrPort // configured notified entity; zero = none
	cache  *txCache
	limit  logLimiter

	slowAfter time.Duration      // slowCommand; tests shorten it
	hook      func(cmd *Command) // tests: runs before each dispatch
	pc        atomic.Pointer[net.PacketConn]
	state     State       // where records are kept (persist.go); nil: not kept. Set by Restore, before Serve
	restored  atomic.Bool // Restore brought connections back: RSIP disconnected, not restart
	lost      []lostConn  // kept connections not restored: DLCX once serving (persist.go); set by Restore, read by Serve
	nextTID   atomic.Uint32

	mu         sync.Mutex // guards conns, endpoints, nextBridge, ntfyOut and every endpointState
	conns      map[string]connInfo
	endpoints  map[string]*endpointState
	nextBridge uint32

	outMu sync.Mutex // guards out
	out   map[uint32]*outTx

	ntfyOut      map[uint32]*ntfyTx // NTFY in flight, by transaction ID (guarded by mu)
	digitCh      chan session.Event // DigitReceived (and releases) for digitLoop
	digitTimers  digitTimers        // defaultDigitTimers; tests shorten them
	ntfyBackoff  ntfyBackoff        // defaultNtfyBackoff; tests shorten it
	afterReply   []outDatagram      // NTFY to send after the current response (guarded by mu)
	annStops     []string           // announcements a detected event stopped, to stop after mu (signals.go)
	notifyClosed bool               // Serve has ended: no new NTFY or digit timer (guarded by mu)
}

// connInfo is what the MGCP front keeps of a connection it created: where
// to announce its release.
type connInfo struct {
	endpoint string         // local name, e.g. "cnf/7"
	notify   netip.AddrPort // N: of the CRCX; zero = the endpoint's or the configured one
	src      netip.AddrPort // the call agent that created it (last resort)
}

// maxEndpointStates bounds the RQNT/EPCF store.
const maxEndpointStates = 1 << 16

// New builds the MGCP front over table. reg may be nil (no metrics).
func New(cfg Config, table *session.Table, log *logrus.Entry, reg prometheus.Registerer) (*Server, error) {
	if table == nil {
		return nil, errors.New("mgcp: nil session table")
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		log = logrus.NewEntry(l)
	}
	log = log.WithField("component", "mgcp")
	if cfg.Domain == "" || strings.ContainsAny(cfg.Domain, " \t@") {
		return nil, fmt.Errorf("mgcp.domain: %q is not a domain name", cfg.Domain)
	}
	if cfg.Listen != "" {
		if _, err := ListenAddr(cfg.Listen); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:       cfg,
		table:     table,
		log:       log,
		cache:     newTxCache(time.Now, cfg.ResponseCache.MaxEntries, cfg.ResponseCache.MaxBytes),
		slowAfter: slowCommand,
		conns:     map[string]connInfo{},
		endpoints: map[string]*endpointState{},
		out:       map[uint32]*outTx{},

		ntfyOut:     map[uint32]*ntfyTx{},
		digitCh:     make(chan session.Event, 1024),
		digitTimers: defaultDigitTimers,
		ntfyBackoff: defaultNtfyBackoff,
	}
	for _, c := range cfg.CallAgents {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("mgcp.call_agents: %q: %v", c, err)
		}
		s.agents = append(s.agents, p.Masked())
	}
	if cfg.NotifiedEntity != "" {
		ap, err := resolveHostPort(cfg.NotifiedEntity)
		if err != nil {
			return nil, fmt.Errorf("mgcp.notified_entity: %v", err)
		}
		s.notify = ap
	}
	met, err := newMetrics(reg, s.cache)
	if err != nil {
		return nil, err
	}
	s.met = met
	table.Subscribe(s.onEvent)
	return s, nil
}

// ListenAddr turns `udp://host:port` (or a bare host:port) into the address
// for net.ListenPacket("udp", ...).
func ListenAddr(listen string) (string, error) {
	addr := listen
	if scheme, rest, ok := strings.Cut(listen, "://"); ok {
		if !strings.EqualFold(scheme, "udp") {
			return "", fmt.Errorf("mgcp.listen: %q: only udp:// is supported", listen)
		}
		addr = rest
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("mgcp.listen: %q: %v", listen, err)
	}
	return addr, nil
}

func resolveHostPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Serve answers commands arriving on conn until ctx ends; it sends RSIP
// (restart) to the notified entity first. conn stays open: the caller owns it.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if !s.pc.CompareAndSwap(nil, &conn) {
		return errors.New("mgcp: Serve called twice")
	}
	digitsDone := make(chan struct{})
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); s.digitLoop(digitsDone) }()
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); s.cache.sweep(digitsDone, time.Second) }()
	defer func() {
		close(digitsDone)
		<-loopDone
		<-sweepDone
		s.pc.Store(nil) // nothing is sent once Serve has returned
		s.cache.stop()
		s.stopOutgoing()
		s.stopNotify()
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	s.log.WithField("listen", conn.LocalAddr().String()).Info("MGCP front serving")
	if s.notify.IsValid() {
		rm := "restart"
		if s.restored.Load() {
			rm = "disconnected" // the connections are in place (persist.go)
		}
		s.sendCommand(&Command{Verb: "RSIP", Endpoint: "*@" + s.cfg.Domain, Version: "1.0",
			Params: Params{{"RM", rm}}}, s.notify)
	}
	s.announceLost()
	if b := newBatchIO(conn); b != nil {
		return s.serveBatched(ctx, b)
	}
	buf := make([]byte, 65536)
	udp, _ := conn.(*net.UDPConn) // reads and writes without allocating an address
	for {
		var n int
		var src netip.AddrPort
		var err error
		if udp != nil {
			n, src, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			var addr net.Addr
			n, addr, err = conn.ReadFrom(buf)
			if err == nil {
				src = addrPort(addr)
			}
		}
		if err != nil {
			if stop, err := s.readFailed(ctx, err); stop {
				return err
			}
			continue
		}
		// A dual-stack socket (the default listen, 0.0.0.0) gives IPv4
		// sources as ::ffff:a.b.c.d, which no IPv4 call_agents prefix
		// contains.
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if out := s.handle(src, buf[:n]); out != nil {
			s.write(out, src)
		}
		s.sendAll(s.takeAfterReply())
	}
}

// serveBatched is Serve's loop on batched I/O: each datagram waiting in the
// socket is handled in order, and their answers (each followed by what
// must go after it, as a NTFY after the response that armed it) leave
// together.
func (s *Server) serveBatched(ctx context.Context, b *batchIO) error {
	failed := func(o outDatagram, err error) { s.sendFailed(err, o.dst) }
	for {
		n, err := b.read()
		if err != nil {
			if stop, err := s.readFailed(ctx, err); stop {
				return err
			}
			continue
		}
		for i := range n {
			src, data, ok := b.datagram(i)
			if !ok {
				continue // truncated or not IP: not on a UDP socket read into 64 KiB
			}
			if out := s.handle(src, data); out != nil {
				b.queue(out, src)
			}
			for _, o := range s.takeAfterReply() {
				b.queue(o.data, o.dst)
			}
		}
		b.flush(failed)
		// Under a flood of commands the socket never runs dry, so this
		// goroutine never parks, and a relay goroutine made ready
		// meanwhile would wait for the scheduler's 10 ms preemption (on one
		// core, media jitter of tens of ms). Yield between batches: media
		// waits for one batch at most.
		runtime.Gosched()
	}
}

// readFailed says whether a read error ends Serve, and with what: ctx
// ending does (nil); a passed deadline or an ICMP error for an earlier send
// does not.
func (s *Server) readFailed(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return true, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) {
		return false, nil // a stale deadline, or an ICMP error for an earlier send
	}
	return true, fmt.Errorf("mgcp: read: %w", err)
}

// Shutdown announces the gateway going out of service (RSIP graceful) and
// waits, bounded by ctx, for the call agent to answer it and the DLCXs the
// table's shutdown caused.
func (s *Server) Shutdown(ctx context.Context) {
	if s.pc.Load() == nil {
		return
	}
	if s.notify.IsValid() {
		s.sendCommand(&Command{Verb: "RSIP", Endpoint: "*@" + s.cfg.Domain, Version: "1.0",
			Params: Params{{"RM", "graceful"}, {"RD", "0"}}}, s.notify)
	}
	for {
		s.outMu.Lock()
		var wait chan struct{}
		for _, tx := range s.out {
			wait = tx.done
			break
		}
		s.outMu.Unlock()
		if wait == nil {
			return
		}
		select {
		case <-wait:
		case <-ctx.Done():
			s.log.Warn("MGCP shutdown: call agent did not answer every gateway command in time")
			return
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (s *Server) write(b []byte, dst netip.AddrPort) {
	pc := s.pc.Load()
	if pc == nil {
		return
	}
	var err error
	if udp, ok := (*pc).(*net.UDPConn); ok {
		_, err = udp.WriteToUDPAddrPort(b, dst)
	} else {
		_, err = (*pc).WriteTo(b, net.UDPAddrFromAddrPort(dst))
	}
	if err != nil {
		s.sendFailed(err, dst)
	}
}

func (s *Server) sendFailed(err error, dst netip.AddrPort) {
	if s.limit.allow() {
		s.log.WithError(err).WithField("remote", dst.String()).Warn("MGCP send failed")
	}
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.agents {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// handle runs one datagram through the pipeline and returns the datagram
// to answer with (nil for none). Piggybacked commands are handled in order
// and their responses piggybacked in the same order.
func (s *Server) handle(src netip.AddrPort, data []byte) []byte {
	s.takeAfterReply() // left by a caller that is not Serve (tests, benchmarks)
	if !s.allowed(src.Addr()) {
		s.met.dropped.WithLabelValues("call_agent").Inc()
		if s.limit.allow() {
			s.log.WithField("remote", src.String()).Info("MGCP datagram from a source outside mgcp.call_agents dropped")
		}
		return nil
	}
	var out [][]byte
	for _, msg := range Split(data) {
		if IsResponse(msg) {
			s.handleResponse(src, msg)
			continue
		}
		if r := s.handleCommand(src, msg); r != nil {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return Piggyback(out...)
}

// handleResponse takes a response to a gateway command, or a `000`
// acknowledgement of a final response that followed a provisional one.
func (s *Server) handleResponse(src netip.AddrPort, msg []byte) {
	r, err := ParseResponse(msg)
	if err != nil {
		s.met.dropped.WithLabelValues("malformed_response").Inc()
		if s.limit.allow() {
			s.log.WithError(err).WithField("remote", src.String()).Info("malformed MGCP response dropped")
		}
		return
	}
	if r.Code == codeAck {
		if !s.cache.ackFinal(txKey{src, r.TransID}) {
			s.met.dropped.WithLabelValues("unexpected_response").Inc()
		}
		return
	}
	if r.Code < 200 {
		return // provisional: keep waiting
	}
	if !s.completeNotify(r) && !s.completeOutgoing(r) {
		s.met.dropped.WithLabelValues("unexpected_response").Inc()
	}
}

// verbs are the commands a gateway executes.
var verbs = map[string]func(*Server, *Command, endpoint, netip.AddrPort) *Response{
	"CRCX": (*Server).crcx,
	"MDCX": (*Server).mdcx,
	"DLCX": (*Server).dlcx,
	"AUEP": (*Server).auep,
	"AUCX": (*Server).aucx,
	"RQNT": (*Server).rqnt,
	"EPCF": (*Server).epcf,
}

// verbParams are the parameters each verb takes (RFC 3435 §3.2.2); others
// are answered 539, unknown X+ extensions 511, X- extensions are ignored.
// Z2/I2 (a second endpoint) are not supported.
var verbParams = map[string]string{
	"CRCX": "K B C L M N X R S D Q T ES",
	"MDCX": "K B C I L M N X R S D Q T ES",
	"DLCX": "K C I N X R S D Q T E P ES",
	"AUEP": "K F",
	"AUCX": "K C I F",
	"RQNT": "K N X R S D Q T ES",
	"EPCF": "K B",
}

// verbTakes is verbParams as sets: verbTakes[verb][name].
var verbTakes = func() map[string]map[string]bool {
	m := make(map[string]map[string]bool, len(verbParams))
	for verb, names := range verbParams {
		m[verb] = make(map[string]bool)
		for _, n := range strings.Fields(names) {
			m[verb][n] = true
		}
	}
	return m
}()

// checkParams answers a parameter the verb does not take.
func checkParams(c *Command) *Response {
	takes := verbTakes[c.Verb]
	for _, p := range c.Params {
		switch {
		case strings.HasPrefix(p.Name, "X-"):
		case strings.HasPrefix(p.Name, "X+"):
			return fail(codeUnknownExt, "unknown extension parameter %s", p.Name)
		case !takes[p.Name]:
			return fail(codeBadParam, "%s does not take %s:", c.Verb, p.Name)
		}
	}
	return nil
}

// handleCommand is osmo-mgw's pipeline: verb lookup (504), header parse
// (510), version (528), retransmission (the remembered response), endpoint
// (500), dispatch, remember. The retransmission check comes before the
// endpoint lookup so a repeat is answered identically even when its endpoint
// has gone away since (a DLCX of cnf/7 ends conference 7).
func (s *Server) handleCommand(src netip.AddrPort, msg []byte) []byte {
	verb, tid := peekHeader(msg)
	if _, ok := verbs[verb]; !ok {
		return s.reject(src, "unknown", tid, codeUnknownCommand, fmt.Sprintf("verb %q", clip(verb)))
	}
	cmd, err := ParseCommand(msg)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			tid = pe.TransID
		}
		return s.reject(src, verb, tid, codeProtocol, err.Error())
	}
	if cmd.Version != "1.0" {
		return s.reject(src, verb, cmd.TransID, codeVersion, "MGCP "+clip(cmd.Version))
	}
	key := txKey{src, cmd.TransID}
	if e := s.cache.lookup(key); e != nil {
		s.met.retransmissions.Inc()
		return s.cache.replay(e)
	}
	if k, ok := cmd.Params.Get("K"); ok {
		ranges, err := parseAcks(k)
		if err != nil {
			return s.reject(src, verb, cmd.TransID, codeProtocol, err.Error())
		}
		s.cache.acknowledge(src, ranges)
	}
	entry := s.cache.begin(key)
	timer := time.AfterFunc(s.slowAfter, func() {
		if s.cache.markProvisional(entry) {
			s.write((&Response{Code: codeProvisional, TransID: cmd.TransID, Comment: codeText[codeProvisional]}).Marshal(), src)
		}
	})
	var resp *Response
	ep, err := parseEndpoint(cmd.Endpoint, s.cfg.Domain)
	if err != nil {
		resp = fail(codeUnknownEndpoint, "endpoint %q", clip(cmd.Endpoint))
	} else {
		if s.hook != nil {
			s.hook(cmd)
		}
		if resp = checkParams(cmd); resp == nil {
			resp = verbs[verb](s, cmd, ep, src)
		}
	}
	timer.Stop()
	resp.TransID = cmd.TransID
	if resp.Comment == "" {
		resp.Comment = codeText[resp.Code]
	}
	s.account(src, cmd, resp)
	return s.cache.finish(entry, resp, func(b []byte) { s.write(b, src) })
}

// peekHeader reads the verb and transaction ID of a command line, as far
// as they are there, for answering commands that do not parse.
func peekHeader(msg []byte) (verb string, tid uint32) {
	msg = bytes.TrimLeft(msg, " \t\r\n")
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	f := strings.Fields(string(msg))
	if len(f) > 0 {
		verb = strings.ToUpper(f[0])
	}
	if len(f) > 1 {
		tid, _ = ParseTransID(f[1])
	}
	return verb, tid
}

// reject answers a command that never reached a verb handler.
func (s *Server) reject(src netip.AddrPort, verb string, tid uint32, code int, detail string) []byte {
	r := &Response{Code: code, TransID: tid, Comment: codeText[code]}
	s.met.commands.WithLabelValues(verb, codeLabel(code)).Inc()
	if s.limit.allow() {
		s.log.WithFields(logrus.Fields{"remote": src.String(), "trans_id": tid, "verb": verb, "code": code}).
			Info("MGCP command rejected: " + detail)
	}
	return r.Marshal()
}

// account counts and logs a verb's response once.
func (s *Server) account(src netip.AddrPort, cmd *Command, r *Response) {
	s.met.commands.WithLabelValues(cmd.Verb, codeLabel(r.Code)).Inc()
	if r.Code < 400 && !s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return // nothing to log: build no fields per command
	}
	f := logrus.Fields{"remote": src.String(), "trans_id": cmd.TransID, "verb": cmd.Verb,
		"endpoint": cmd.Endpoint, "code": r.Code}
	if r.err != "" {
		f["error"] = r.err
	}
	if r.Code >= 400 {
		if s.limit.allow() {
			s.log.WithFields(f).Info("MGCP command failed")
		}
		return
	}
	s.log.WithFields(f).Debug("MGCP command done")
}

// fail builds an error response; the detail goes to the log, not the wire.
func fail(code int, format string, a ...any) *Response {
	return &Response{Code: code, err: fmt.Sprintf(format, a...)}
}

// outTx is a gateway-initiated command waiting for its response.
type outTx struct {
	data  []byte
	dst   netip.AddrPort
	timer *time.Timer
	done  chan struct{}
}

// sendCommand sends a gateway-initiated command and retransmits it until
// a response arrives or the retransmissions are used up.
func (s *Server) sendCommand(c *Command, dst netip.AddrPort) {
	if s.pc.Load() == nil {
		return
	}
	tid := s.nextTID.Add(1)
	c.TransID = tid
	tx := &outTx{data: c.Marshal(), dst: dst, done: make(chan struct{})}
	s.outMu.Lock()
	s.out[tid] = tx
	s.scheduleOutLocked(tid, tx, 0)
	s.outMu.Unlock()
	s.met.sent.WithLabelValues(c.Verb).Inc()
	s.write(tx.data, dst)
}

func (s *Server) scheduleOutLocked(tid uint32, tx *outTx, n int) {
	tx.timer = time.AfterFunc(outgoingRetransmits[n], func() {
		s.outMu.Lock()
		if s.out[tid] != tx {
			s.outMu.Unlock()
			return
		}
		if n+1 >= len(outgoingRetransmits) {
			delete(s.out, tid)
			close(tx.done)
			s.outMu.Unlock()
			if s.limit.allow() {
				s.log.WithFields(logrus.Fields{"trans_id": tid, "remote": tx.dst.String()}).Warn("no response to gateway MGCP command")
			}
			return
		}
		s.scheduleOutLocked(tid, tx, n+1)
		s.outMu.Unlock()
		s.write(tx.data, tx.dst)
	})
}

func (s *Server) completeOutgoing(r *Response) bool {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	tx := s.out[r.TransID]
	if tx == nil {
		return false
	}
	delete(s.out, r.TransID)
	tx.timer.Stop()
	close(tx.done)
	return true
}

func (s *Server) stopOutgoing() {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	for tid, tx := range s.out {
		tx.timer.Stop()
		close(tx.done)
		delete(s.out, tid)
	}
}

// logLimiter lets through a few log lines a second, for what a peer can
// make repeat.
type logLimiter struct {
	sec   atomic.Int64
	count atomic.Int32
}

func (l *logLimiter) allow() bool {
	now := time.Now().Unix()
	if l.sec.Load() != now {
		l.sec.Store(now)
		l.count.Store(0)
	}
	return l.count.Add(1) <= 20
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
