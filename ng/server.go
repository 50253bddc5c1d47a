package ng

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
	"github.com/mediagw/mediagw/session"
)

// Config is the yaml section `ng`.
type Config struct {
	Listen      string        `yaml:"listen"`       // "" = off; "udp://127.0.0.1:2223"
	DeleteDelay time.Duration `yaml:"delete_delay"` // 30s (rtpengine's --delete-delay); "delete delay" per command overrides
	Allow       []string      `yaml:"allow"`        // CIDRs of the proxies that may send commands; others are dropped
}

// DefaultConfig is the built-in `ng` section: off; loopback may command it.
func DefaultConfig() Config {
	return Config{DeleteDelay: 30 * time.Second, Allow: []string{"127.0.0.0/8", "::1/128"}}
}

// Validate checks the section.
func (c Config) Validate() error {
	if c.Listen != "" {
		if _, err := ListenAddr(c.Listen); err != nil {
			return err
		}
	}
	if c.DeleteDelay < 0 {
		return fmt.Errorf("ng.delete_delay: %s is negative", c.DeleteDelay)
	}
	_, err := parseAllow(c.Allow)
	return err
}

// parseAllow reads ng.allow: CIDRs or single addresses.
func parseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, a := range list {
		a = strings.TrimSpace(a)
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, err2 := netip.ParseAddr(a)
			if err2 != nil {
				return nil, fmt.Errorf("ng.allow[%d]: %q is not a CIDR or an address", i, a)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ListenAddr turns `udp://host:port` (or host:port) into the address for
// net.ListenPacket("udp", ...).
func ListenAddr(listen string) (string, error) {
	addr := listen
	if scheme, rest, ok := strings.Cut(listen, "://"); ok {
		if !strings.EqualFold(scheme, "udp") {
			return "", fmt.Errorf("ng.listen: %q: only udp:// is supported", listen)
		}
		addr = rest
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("ng.listen: %q: %v", listen, err)
	}
	return addr, nil
}

// Server is the ng front: one UDP socket, the reply cache and the commands.
type Server struct {
	cfg     Config
	table   *session.Table
	log     *logrus.Entry
	met     *metrics
	cache   *replyCache
	allow   []netip.Prefix
	limit   logLimiter
	started time.Time
	pc      atomic.Pointer[net.PacketConn]
	nCalls  atomic.Int64

	mu     sync.Mutex // guards calls, byConn, totals and every call/dialog/stream reached from them
	calls  map[string]*call
	byConn map[string]connRef
	totals totals
	media  mediaState // media.go
	closed bool       // Serve returned: delayed deletes run at once
	state  State      // where calls are kept (persist.go); nil: not kept. Set by Restore, before Serve
}

// connRef finds the dialog of a connection the ng front created.
type connRef struct {
	call   *call
	dialog *dialog
}

// totals are the counters of `statistics`.
type totals struct {
	managed   uint64 // calls created
	regular   uint64 // ended by a delete
	forced    uint64 // ended by another front (HTTP, MGCP, shutdown)
	timeout   uint64 // ended by the media timeout
	callSecs  float64
	callCount uint64
}

// New builds the ng front over table. reg may be nil (no metrics).
func New(cfg Config, table *session.Table, log *logrus.Entry, reg prometheus.Registerer) (*Server, error) {
	if table == nil {
		return nil, errors.New("ng: nil session table")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		log = logrus.NewEntry(l)
	}
	s := &Server{
		cfg:     cfg,
		table:   table,
		log:     log.WithField("component", "ng"),
		cache:   newReplyCache(time.Now),
		started: time.Now(),
		calls:   map[string]*call{},
		byConn:  map[string]connRef{},
		media:   mediaState{plays: map[string]string{}, dtmf: map[string][]session.DigitParams{}, recs: map[string][]string{}},
	}
	s.allow, _ = parseAllow(cfg.Allow) // checked by Validate
	met, err := newMetrics(reg, func() float64 { return float64(s.nCalls.Load()) })
	if err != nil {
		return nil, err
	}
	s.met = met
	table.Subscribe(s.onEvent)
	return s, nil
}

// Serve answers commands arriving on conn until ctx ends. conn stays open:
// the caller owns it.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if !s.pc.CompareAndSwap(nil, &conn) {
		return errors.New("ng: Serve called twice")
	}
	defer func() {
		s.pc.Store(nil)
		s.flushDelayed()
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	s.log.WithField("listen", conn.LocalAddr().String()).Info("ng front serving")

	buf := make([]byte, 65536)
	udp, _ := conn.(*net.UDPConn)
	var dec Decoder
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
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return fmt.Errorf("ng: read: %w", err)
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if out := s.handle(&dec, src, buf[:n]); out != nil {
			s.write(out, src)
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
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
	if err != nil && s.limit.allow() {
		s.log.WithError(err).WithField("remote", dst.String()).Warn("ng send failed")
	}
}

// handle runs one datagram: cookie, reply cache, decode, command, reply.
// It returns the reply datagram, or nil when there is nothing to answer.
func (s *Server) handle(dec *Decoder, src netip.AddrPort, data []byte) []byte {
	if !s.allowed(src.Addr()) {
		s.met.dropped.WithLabelValues("source").Inc()
		if s.limit.allow() {
			s.log.WithField("remote", src.String()).Info("ng datagram from a source outside ng.allow dropped")
		}
		return nil
	}
	cookie, body, ok := SplitDatagram(data)
	if !ok {
		s.met.dropped.WithLabelValues("no_cookie").Inc()
		if s.limit.allow() {
			s.log.WithField("remote", src.String()).Info("ng datagram without a cookie dropped")
		}
		return nil
	}
	if r := s.cache.get(src, cookie); r != nil {
		s.met.retransmissions.Inc()
		return r
	}
	var rep reply
	command := "unknown"
	v, err := dec.Decode(body)
	if err != nil {
		rep = failure(reasonDecode)
		s.logFailure(src, command, nil, rep.reason+": "+err.Error())
	} else if req, err := ParseRequest(v); err != nil {
		rep = failure("Invalid request: " + err.Error())
		s.logFailure(src, command, nil, rep.reason)
	} else {
		command = req.Command
		rep = s.dispatch(req)
		if rep.result == resultError || rep.result == resultLoadLimit {
			s.logFailure(src, command, req, rep.result+": "+rep.reason+rep.message)
		} else if len(req.Ignored) > 0 && s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			s.log.WithFields(logrus.Fields{"remote": src.String(), "call_id": req.CallID, "command": command,
				"ignored": req.Ignored}).Debug("ng keys and flags not acted on")
		}
	}
	s.met.requests.WithLabelValues(commandLabel(command), rep.result).Inc()
	out := append(make([]byte, 0, len(cookie)+1+rep.size()), cookie...)
	out = append(out, ' ')
	out = rep.appendTo(out)
	s.cache.put(src, cookie, out)
	return out
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) logFailure(src netip.AddrPort, command string, req *Request, reason string) {
	if !s.limit.allow() {
		return
	}
	// The command, Call-ID and reason quote what the client sent: cut.
	f := logrus.Fields{"remote": src.String(), "command": ratelog.Truncate(command, 64)}
	if req != nil && req.CallID != "" {
		f["call_id"] = ratelog.Truncate(req.CallID, 128)
	}
	s.log.WithFields(f).Info("ng command failed: " + ratelog.Truncate(reason, 200))
}

// reply is one answer dictionary.
type reply struct {
	result  string
	reason  string // error-reason
	message string // with result "load limit"
	warning string
	sdp     []byte
	extra   Dict // further keys (query, list, statistics, delete)
}

func failure(reason string) reply { return reply{result: resultError, reason: reason} }

func (r *reply) size() int { return 64 + len(r.reason) + len(r.message) + len(r.warning) + len(r.sdp) }

// appendTo bencodes the reply. Without extra keys it is written directly
// (keys in sorted order: error-reason, message, result, sdp, warning).
func (r *reply) appendTo(dst []byte) []byte {
	if r.extra != nil {
		d := r.extra
		d["result"] = r.result
		if r.reason != "" {
			d["error-reason"] = r.reason
		}
		if r.warning != "" {
			d["warning"] = r.warning
		}
		if r.message != "" {
			d["message"] = r.message
		}
		if r.sdp != nil {
			d["sdp"] = r.sdp
		}
		out, err := Marshal(dst, d)
		if err == nil {
			return out
		}
		return (&reply{result: resultError, reason: "Internal error: " + err.Error()}).appendTo(dst)
	}
	dst = append(dst, 'd')
	if r.reason != "" {
		dst = AppendString(dst, "error-reason")
		dst = AppendString(dst, r.reason)
	}
	if r.message != "" {
		dst = AppendString(dst, "message")
		dst = AppendString(dst, r.message)
	}
	dst = AppendString(dst, "result")
	dst = AppendString(dst, r.result)
	if r.sdp != nil {
		dst = AppendString(dst, "sdp")
		dst = AppendBytes(dst, r.sdp)
	}
	if r.warning != "" {
		dst = AppendString(dst, "warning")
		dst = AppendString(dst, r.warning)
	}
	return append(dst, 'e')
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
