package sip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

// Test ports (docs/contracts.md: sip tests own 33000-33999): the gateway's
// RTP pool uses 33000-33799, the test phones' RTP sockets 33800-33999.
const (
	poolMin, poolMax = 33000, 33799
	phoneMin         = 33800
	phoneMax         = 33999
)

// waitFor bounds how long a test waits for something to happen; it is a
// liveness bound, not a timing assertion.
const waitFor = 15 * time.Second

func testLogger(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("SIP_TEST_LOG") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l).WithField("test", t.Name())
}

// gateway is a SIP front on a real session table, RTP pool and mixer.
type gateway struct {
	s     *Server
	table *session.Table
	pool  *rtpproxy.Pool
	reg   *prometheus.Registry
	udp   string // host:port of the UDP listener
	tcp   string
}

type gwOption func(*session.Config)

func withMediaTimeout(d time.Duration) gwOption {
	return func(c *session.Config) { c.MediaTimeout = d }
}

func startGateway(t testing.TB, routes []Route, opts ...gwOption) *gateway {
	t.Helper()
	return startGatewayConfig(t, Config{Trusted: DefaultTrusted}, routes, opts...)
}

// startGatewayConfig is startGateway with a sip section (its listen is set here).
func startGatewayConfig(t testing.TB, sipCfg Config, routes []Route, opts ...gwOption) *gateway {
	t.Helper()
	log := testLogger(t)
	pool, err := rtpproxy.NewPool(testRTPConfig(poolMin, poolMax))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() }) // unbinds the pairs it keeps bound for reuse; stops its pollers
	eng := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	cfg := session.Config{Conference: session.DefaultConferenceConfig()}
	for _, o := range opts {
		o(&cfg)
	}
	table := session.New(cfg, pool, eng, log)
	ctx, cancel := context.WithCancel(context.Background())
	go table.Run(ctx)
	reg := prometheus.NewRegistry()
	if routes == nil {
		routes = DefaultRoutes()
	}
	sipCfg.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	s, err := New(sipCfg, routes, nil, table, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.ServeUDP(ctx, pc); err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := s.ServeTCP(ctx, ln); err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	}()
	g := &gateway{s: s, table: table, pool: pool, reg: reg, udp: pc.LocalAddr().String(), tcp: ln.Addr().String()}
	t.Cleanup(func() {
		table.Shutdown()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Shutdown(sctx)
		scancel()
		cancel()
		wg.Wait()
		eng.Close()
	})
	return g
}

// uri is a SIP URI of user at the gateway.
func (g *gateway) uri(user string) gosip.Uri {
	host, port, _ := gosip.ParseAddr(g.udp)
	return gosip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
}

// idle waits until the gateway holds no call, connection or conference and
// every port pair is free again.
func (g *gateway) idle(t testing.TB) {
	t.Helper()
	eventually(t, "gateway idle", func() bool {
		return g.s.Calls() == 0 && len(g.table.Connections()) == 0 && len(g.table.Conferences()) == 0 &&
			g.pool.FreePairs() == g.pool.Pairs()
	})
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// phone is a test SIP user agent on sipgo with a tone-tagged RTP endpoint.
type phone struct {
	t       testing.TB
	name    string
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	contact gosip.ContactHeader
	addr    string // SIP host:port
	dc      *sipgo.DialogClientCache
	ds      *sipgo.DialogServerCache
	rtp     *rtpPeer

	byes     chan *gosip.Request             // BYEs the gateway sent us
	notifies chan string                     // sipfrag bodies of NOTIFYs
	infos    chan string                     // bodies of INFOs
	invites  chan *gosip.Request             // INVITEs we received
	dialogs  chan *sipgo.DialogServerSession // dialogs of INVITEs we answered
	cancels  chan struct{}                   // INVITEs of ours cancelled by the caller

	mu     sync.Mutex // guards answer
	answer int        // status for incoming INVITEs: 200 answers, 180 rings until cancelled
}

func newPhone(t testing.TB, name string, tone float64) *phone {
	t.Helper()
	p := &phone{t: t, name: name, answer: 200,
		byes: make(chan *gosip.Request, 8), notifies: make(chan string, 8), infos: make(chan string, 8),
		invites: make(chan *gosip.Request, 8), dialogs: make(chan *sipgo.DialogServerSession, 8), cancels: make(chan struct{}, 8)}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = pc.LocalAddr().String()
	host, port, _ := gosip.ParseAddr(p.addr)
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(host))
	if err != nil {
		t.Fatal(err)
	}
	p.cli, err = sipgo.NewClient(p.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(p.ua)
	if err != nil {
		t.Fatal(err)
	}
	p.contact = gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: name, Host: host, Port: port}}
	p.dc = sipgo.NewDialogClientCache(p.cli, p.contact)
	p.ds = sipgo.NewDialogServerCache(p.cli, p.contact)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *gosip.Request, tx gosip.ServerTransaction) { _ = p.ds.ReadAck(req, tx) })
	srv.OnBye(p.onBye)
	srv.OnNotify(p.onNotify)
	srv.OnInfo(func(req *gosip.Request, tx gosip.ServerTransaction) {
		_ = tx.Respond(gosip.NewResponseFromRequest(req, 200, "OK", nil))
		p.infos <- string(req.Body())
	})
	p.rtp = newRTPPeer(t, tone)
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = p.ua.Close()
	})
	return p
}

func (p *phone) uri() gosip.Uri {
	host, port, _ := gosip.ParseAddr(p.addr)
	return gosip.Uri{Scheme: "sip", User: p.name, Host: host, Port: port}
}

func (p *phone) setAnswer(code int) {
	p.mu.Lock()
	p.answer = code
	p.mu.Unlock()
}

// offer is an SDP offer for our RTP endpoint.
func (p *phone) offer(dir direction, formats ...format) []byte {
	if len(formats) == 0 {
		formats = []format{staticFormats[0], defaultTE}
	}
	return buildSDP(localMedia{SessID: 1, Version: uint64(time.Now().UnixNano() & 0xffffff), Addr: p.rtp.local(),
		Formats: formats, Dir: dir, Ptime: 20 * time.Millisecond}, nil)
}

func (p *phone) onInvite(req *gosip.Request, tx gosip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		_ = tx.Respond(gosip.NewResponseFromRequest(req, 488, "Not Here", nil))
		return
	}
	p.invites <- req
	d, err := p.ds.ReadInvite(req, tx)
	if err != nil {
		p.t.Errorf("%s: ReadInvite: %v", p.name, err)
		return
	}
	p.mu.Lock()
	code := p.answer
	p.mu.Unlock()
	switch {
	case code == 200:
		offer, err := parseSDP(req.Body())
		if err != nil {
			_ = d.Respond(488, "Not Acceptable Here", nil)
			return
		}
		p.rtp.setRemote(offer.remote())
		_ = d.Respond(180, "Ringing", nil)
		p.dialogs <- d
		_ = d.RespondSDP(p.offer(dirSendRecv, offer.Formats[0]))
	case code < 200:
		_ = d.Respond(code, "Ringing", nil)
		<-d.Context().Done()
		if errors.Is(context.Cause(d.Context()), gosip.ErrTransactionCanceled) {
			p.cancels <- struct{}{}
		}
	default:
		_ = d.Respond(code, "Failure", nil)
	}
}

func (p *phone) onBye(req *gosip.Request, tx gosip.ServerTransaction) {
	if err := p.ds.ReadBye(req, tx); err != nil {
		if err := p.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(gosip.NewResponseFromRequest(req, 481, "No Dialog", nil))
			return
		}
	}
	p.byes <- req
}

func (p *phone) onNotify(req *gosip.Request, tx gosip.ServerTransaction) {
	_ = tx.Respond(gosip.NewResponseFromRequest(req, 200, "OK", nil))
	p.notifies <- string(req.Body())
}

// call is an outgoing call of a phone.
type call struct {
	p      *phone
	d      *sipgo.DialogClientSession
	answer *description
}

// dial calls uri with an SDP offer (nil: none) and ACKs the 2xx; the
// response is returned when it is not a 2xx.
func (p *phone) dial(uri gosip.Uri, body []byte, hdrs ...gosip.Header) (*call, *gosip.Response) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if body != nil {
		hdrs = append(hdrs, gosip.NewHeader("Content-Type", "application/sdp"))
	}
	d, err := p.dc.Invite(ctx, uri, body, hdrs...)
	if err != nil {
		p.t.Fatalf("%s: INVITE %s: %v", p.name, uri.String(), err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return nil, de.Res
		}
		p.t.Fatalf("%s: INVITE %s: %v", p.name, uri.String(), err)
	}
	c := &call{p: p, d: d}
	if len(d.InviteResponse.Body()) > 0 {
		ans, err := parseSDP(d.InviteResponse.Body())
		if err != nil {
			p.t.Fatalf("%s: SDP answer: %v\n%s", p.name, err, d.InviteResponse.Body())
		}
		c.answer = ans
		p.rtp.setRemote(ans.remote())
	}
	if body != nil {
		if err := d.Ack(ctx); err != nil {
			p.t.Fatal(err)
		}
	}
	return c, nil
}

// mustDial is dial that expects a 2xx.
func (p *phone) mustDial(uri gosip.Uri, body []byte) *call {
	p.t.Helper()
	c, res := p.dial(uri, body)
	if c == nil {
		p.t.Fatalf("%s: INVITE %s: %d %s", p.name, uri.String(), res.StatusCode, res.Reason)
	}
	return c
}

func (c *call) hangup() {
	c.p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.d.Bye(ctx); err != nil {
		c.p.t.Fatalf("%s: BYE: %v", c.p.name, err)
	}
}

// do sends an in-dialog request and returns the final response.
func (c *call) do(method gosip.RequestMethod, body []byte, contentType string, hdrs ...gosip.Header) *gosip.Response {
	c.p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req := gosip.NewRequest(method, c.d.InviteResponse.Contact().Address)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if body != nil {
		req.AppendHeader(gosip.NewHeader("Content-Type", contentType))
		req.SetBody(body)
	}
	res, err := c.d.Do(ctx, req)
	if err != nil {
		c.p.t.Fatalf("%s: %s: %v", c.p.name, method, err)
	}
	return res
}

// reinvite sends a re-INVITE with body (nil: none); for a 2xx it sends the
// ACK (with answer, if given) and returns the 2xx.
func (c *call) reinvite(body []byte, ackBody func(*gosip.Response) []byte) *gosip.Response {
	c.p.t.Helper()
	res := c.do(gosip.INVITE, body, "application/sdp")
	if !res.IsSuccess() {
		return res
	}
	ack := gosip.NewRequest(gosip.ACK, c.d.InviteResponse.Contact().Address)
	ack.AppendHeader(&gosip.CSeqHeader{SeqNo: res.CSeq().SeqNo, MethodName: gosip.ACK})
	if ackBody != nil {
		ack.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(ackBody(res))
	}
	if err := c.d.WriteRequest(ack); err != nil {
		c.p.t.Fatal(err)
	}
	return res
}

func (p *phone) expectBye(t testing.TB) *gosip.Request {
	t.Helper()
	select {
	case r := <-p.byes:
		return r
	case <-time.After(waitFor):
		t.Fatalf("%s: no BYE", p.name)
	}
	return nil
}

func (p *phone) expectNotify(t testing.TB) string {
	t.Helper()
	select {
	case b := <-p.notifies:
		return b
	case <-time.After(waitFor):
		t.Fatalf("%s: no NOTIFY", p.name)
	}
	return ""
}

// rtpPeer sends a PCMU sine tone every 20 ms and measures which tones it
// hears in what it receives (Goertzel per 160-sample frame).
type rtpPeer struct {
	conn   *net.UDPConn
	tone   float64
	remote atomic.Pointer[netip.AddrPort]
	mute   atomic.Bool

	mu     sync.Mutex // guards the detector fields below
	freqs  []float64
	heard  []int // frames in which freqs[i] was present
	frames int   // frames with sound
	pkts   int   // packets received
	pts    map[uint8]int
}

var nextPhonePort atomic.Int32

func newRTPPeer(t testing.TB, tone float64) *rtpPeer {
	t.Helper()
	var conn *net.UDPConn
	for i := 0; i < phoneMax-phoneMin && conn == nil; i++ {
		port := phoneMin + int(nextPhonePort.Add(1))%(phoneMax-phoneMin)
		conn, _ = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	}
	if conn == nil {
		t.Fatal("no free phone RTP port")
	}
	r := &rtpPeer{conn: conn, tone: tone, pts: make(map[uint8]int)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.send(stop) }()
	go func() { defer wg.Done(); r.receive() }()
	t.Cleanup(func() {
		close(stop)
		_ = conn.Close()
		wg.Wait()
	})
	return r
}

func (r *rtpPeer) local() netip.AddrPort {
	return r.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (r *rtpPeer) setRemote(ap netip.AddrPort) {
	if ap.IsValid() {
		r.remote.Store(&ap)
	}
}

// listen starts counting frequencies (and resets the counts).
func (r *rtpPeer) listen(freqs ...float64) {
	r.mu.Lock()
	r.freqs = freqs
	r.heard = make([]int, len(freqs))
	r.frames = 0
	r.mu.Unlock()
}

// hears reports in how many frames each frequency was present and how many
// frames carried sound.
func (r *rtpPeer) counts() (heard []int, frames int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.heard...), r.frames
}

func (r *rtpPeer) packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pkts
}

func (r *rtpPeer) send(stop chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pkt := make([]byte, 12+160)
	ssrc := uint32(time.Now().UnixNano())
	var seq uint16
	var ts uint32
	var n float64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		dst := r.remote.Load()
		if dst == nil || r.tone == 0 || r.mute.Load() {
			continue
		}
		pkt[0], pkt[1] = 0x80, 0
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		binary.BigEndian.PutUint32(pkt[8:], ssrc)
		for i := 0; i < 160; i++ {
			pkt[12+i] = ulawEncode(int16(6000 * math.Sin(2*math.Pi*r.tone*n/8000)))
			n++
		}
		seq++
		ts += 160
		_, _ = r.conn.WriteToUDPAddrPort(pkt, *dst)
	}
}

func (r *rtpPeer) receive() {
	buf := make([]byte, 2048)
	samples := make([]float64, 0, 160)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n < 12 || buf[0]>>6 != 2 {
			continue
		}
		hl := 12 + 4*int(buf[0]&0x0f)
		pt := buf[1] & 0x7f
		r.mu.Lock()
		r.pkts++
		r.pts[pt]++
		r.mu.Unlock()
		if pt != 0 || n < hl {
			continue
		}
		for _, b := range buf[hl:n] {
			samples = append(samples, float64(ulawDecode(b)))
			if len(samples) == 160 {
				r.analyse(samples)
				samples = samples[:0]
			}
		}
	}
}

func (r *rtpPeer) analyse(x []float64) {
	var energy float64
	for _, v := range x {
		energy += v * v
	}
	if energy/float64(len(x)) < 200*200 { // silence (or comfort level)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	for i, f := range r.freqs {
		if goertzel(x, f)/(energy*float64(len(x))/2) > 0.12 {
			r.heard[i]++
		}
	}
}

// goertzel is the power of frequency f in x (8 kHz samples).
func goertzel(x []float64, f float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*f/8000)
	var s1, s2 float64
	for _, v := range x {
		s := v + coeff*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// hearsOnly waits until r has heard every frequency of want in at least
// 25 frames, then checks that it heard none of notWant in more than a
// tenth of its frames.
func hearsOnly(t testing.TB, name string, r *rtpPeer, want, notWant []float64) {
	t.Helper()
	all := append(append([]float64(nil), want...), notWant...)
	r.listen(all...)
	deadline := time.Now().Add(waitFor)
	for {
		heard, frames := r.counts()
		ok := true
		for i := range want {
			if heard[i] < 25 {
				ok = false
			}
		}
		if ok {
			for j := range notWant {
				if n := heard[len(want)+j]; n*10 > frames {
					t.Errorf("%s hears %.0f Hz in %d of %d frames (its own or a tone it must not hear)", name, notWant[j], n, frames)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: wanted %v Hz, heard %v in %d frames (%d packets)", name, want, heard, frames, r.packets())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ulawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	x, sign := int(s), 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, clip) + bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func ulawDecode(u byte) int16 {
	u = ^u
	exp, mant := int(u>>4)&7, int(u&0x0f)
	x := ((mant << 3) + 0x84) << exp
	x -= 0x84
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}

// metric reads a counter of the gateway's registry.
func (g *gateway) metric(name, label, value string) float64 {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// raw sends one SIP message over UDP to addr and returns the first final
// response (or the first response with final false).
func raw(t testing.TB, addr, msg string, final bool) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	msg = strings.ReplaceAll(msg, "LOCAL", local)
	msg = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	for {
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no response to:\n%s\n%v", msg, err)
		}
		res := string(buf[:n])
		if !final || !strings.HasPrefix(res, "SIP/2.0 1") {
			return res
		}
	}
}

func statusOf(res string) int {
	var code int
	fmt.Sscanf(res, "SIP/2.0 %d", &code)
	return code
}

func testCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitFor)
}

func answerOpts(f func(*gosip.Response)) sipgo.AnswerOptions {
	return sipgo.AnswerOptions{OnResponse: func(r *gosip.Response) error { f(r); return nil }}
}

// hangupAnswered sends BYE in the dialog of the INVITE p answered last.
func (p *phone) hangupAnswered(t testing.TB) {
	t.Helper()
	var d *sipgo.DialogServerSession
	select {
	case d = <-p.dialogs:
	case <-time.After(waitFor):
		t.Fatalf("%s answered no call", p.name)
	}
	ctx, cancel := testCtx()
	defer cancel()
	if err := d.Bye(ctx); err != nil {
		t.Fatalf("%s: BYE: %v", p.name, err)
	}
}

func uriString(u gosip.Uri) string { return u.String() }

func gosipHeader(name, value string) gosip.Header { return gosip.NewHeader(name, value) }

// testRTPConfig is the built-in rtp section on loopback ports lo..hi.
func testRTPConfig(lo, hi int) rtpproxy.Config {
	cfg := rtpproxy.DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax = "127.0.0.1", lo, hi
	return cfg
}
