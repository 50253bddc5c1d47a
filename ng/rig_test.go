package ng

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test ports of this package (docs/contracts.md): RTP 38000-38999; ours
// take 38000-38499, rtpengine in the comparison 38500-38999.
const rtpMin, rtpMax = 38000, 38499

func testLogger(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(tbWriter{t})
		l.SetLevel(logrus.DebugLevel)
	}
	return l.WithField("component", "test")
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rig is the ng front over a real table and RTP pool, served on a
// loopback port-0 socket, with a client socket speaking ng to it.
type rig struct {
	t      testing.TB
	table  *session.Table
	pool   *rtpproxy.Pool
	srv    *Server
	reg    *prometheus.Registry
	addr   *net.UDPAddr
	client *net.UDPConn
	seq    atomic.Uint64
}

func newRig(t testing.TB, cfg Config, tableOpts ...func(*session.Config)) *rig {
	pool, err := rtpproxy.NewPool(rtpproxy.Config{Bind: "127.0.0.1", PortMin: rtpMin, PortMax: rtpMax})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	eng := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	t.Cleanup(eng.Close)
	tcfg := session.Config{Resources: session.DefaultResources(), Conference: session.DefaultConferenceConfig()}
	for _, o := range tableOpts {
		o(&tcfg)
	}
	table := session.New(tcfg, pool, eng, testLogger(t))
	t.Cleanup(table.Shutdown)
	if tcfg.MediaTimeout > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { table.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	r := &rig{t: t, table: table, pool: pool, reg: prometheus.NewRegistry()}
	srv, err := New(cfg, table, testLogger(t), r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	pc := listenUDP(t)
	r.addr = pc.LocalAddr().(*net.UDPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r.client = listenUDP(t)
	return r
}

func listenUDP(t testing.TB) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// raw sends a datagram and returns the reply datagram.
func raw(t testing.TB, c *net.UDPConn, to *net.UDPAddr, dg []byte) []byte {
	t.Helper()
	if _, err := c.WriteToUDP(dg, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no reply to %q: %v", clip(dg), err)
	}
	return buf[:n]
}

// do sends one command dictionary and returns the decoded reply as Go
// values (string, int64, []any, map[string]any).
func (r *rig) do(cmd Dict) map[string]any {
	r.t.Helper()
	return doNG(r.t, r.client, r.addr, fmt.Sprintf("t%d", r.seq.Add(1)), cmd)
}

func doNG(t testing.TB, c *net.UDPConn, to *net.UDPAddr, cookie string, cmd Dict) map[string]any {
	t.Helper()
	body, err := Marshal(nil, cmd)
	if err != nil {
		t.Fatal(err)
	}
	rep := raw(t, c, to, append([]byte(cookie+" "), body...))
	ck, b, ok := SplitDatagram(rep)
	if !ok || string(ck) != cookie {
		t.Fatalf("reply %q does not echo cookie %q", clip(rep), cookie)
	}
	var dec Decoder
	v, err := dec.Decode(b)
	if err != nil {
		t.Fatalf("reply %q: %v", clip(rep), err)
	}
	m, _ := toGo(v).(map[string]any)
	return m
}

// toGo turns a Value into plain Go values for comparisons.
func toGo(v Value) any {
	switch v.Kind() {
	case KindString:
		return string(v.Bytes())
	case KindInt:
		n, _ := v.Int()
		return n
	case KindList:
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, toGo(v.Index(i)))
		}
		return out
	case KindDict:
		out := map[string]any{}
		for i := 0; i < v.Len(); i++ {
			k, e := v.Entry(i)
			out[string(k)] = toGo(e)
		}
		return out
	}
	return nil
}

// sdpFor is a minimal audio offer or answer from a peer at ap.
func sdpFor(ap netip.AddrPort, extra ...string) string {
	ip := ap.Addr().String()
	s := fmt.Sprintf("v=0\r\no=peer 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\n", ip, ip, ap.Port())
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s
}

// mediaPort is the first m= port and c= address of an SDP.
func mediaPort(t testing.TB, sdp string) netip.AddrPort {
	t.Helper()
	doc, err := parseSDP([]byte(sdp))
	if err != nil || len(doc.media) == 0 {
		t.Fatalf("SDP %q: %v", sdp, err)
	}
	return netip.AddrPortFrom(doc.address(&doc.media[0]), uint16(doc.media[0].port))
}

func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
