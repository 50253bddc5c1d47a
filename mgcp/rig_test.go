package mgcp

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

// rig is a real gateway front for tests: a session table over an RTP pool on
// the mgcp test ports (32000-32999), a confbridge engine, the Server on a
// loopback port-0 socket, a call agent socket (127.0.0.1, also the notified
// entity) and an outsider socket (127.0.0.2, not a configured call agent).
type rig struct {
	t        *testing.T
	table    *session.Table
	srv      *Server
	reg      *prometheus.Registry
	srvAddr  *net.UDPAddr
	ca       *net.UDPConn
	outsider *net.UDPConn
	sentinel uint32
	rsip     string          // the RSIP restart the gateway sent at start (acknowledged)
	seen     map[string]bool // gateway commands already received (to skip retransmissions)
}

// rigOption changes the rig before it starts: the front's config, the
// server, or the table's resources.
type rigOption struct {
	cfg       func(*Config)
	srv       func(*Server)
	resources func(*session.Resources)
	media     func(*session.MediaConfig)
	ports     [2]int // RTP port range of the table; zero = 32000-32999
	listen    string // the server socket's IP; "" = 127.0.0.1
}

func withResource(name string, n int) rigOption {
	return rigOption{resources: func(r *session.Resources) {
		switch name {
		case "resources.rtp":
			r.RTP = n
		case "resources.enhanced_rtp":
			r.EnhancedRTP = n
		case "resources.conference":
			r.Conference = n
		}
	}}
}

func testLogger(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(tbWriter{t})
		l.SetLevel(logrus.DebugLevel)
	}
	return l.WithField("component", "mgcp")
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTable(t testing.TB, opts ...rigOption) *session.Table {
	lo, hi := 32000, 32999
	for _, o := range opts {
		if o.ports[0] != 0 {
			lo, hi = o.ports[0], o.ports[1]
		}
	}
	pool, err := rtpproxy.NewPool(testRTPConfig(lo, hi))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() }) // unbinds the pairs it keeps bound for reuse; stops its pollers
	eng := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	t.Cleanup(eng.Close)
	cfg := session.Config{Resources: session.DefaultResources(), Conference: session.DefaultConferenceConfig()}
	for _, o := range opts {
		if o.resources != nil {
			o.resources(&cfg.Resources)
		}
		if o.media != nil {
			cfg.Media = session.DefaultMediaConfig()
			o.media(&cfg.Media)
		}
	}
	table := session.New(cfg, pool, eng, testLogger(t).WithField("component", "session"))
	t.Cleanup(table.Shutdown)
	return table
}

func listenUDP(t testing.TB, ip string) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newRig(t *testing.T, opts ...rigOption) *rig {
	r := &rig{t: t, table: newTable(t, opts...), reg: prometheus.NewRegistry(), sentinel: 990000000, seen: map[string]bool{}}
	r.ca = listenUDP(t, "127.0.0.1")
	r.outsider = listenUDP(t, "127.0.0.2")
	cfg := DefaultConfig()
	cfg.CallAgents = []string{"127.0.0.1/32"}
	cfg.NotifiedEntity = r.ca.LocalAddr().String()
	for _, o := range opts {
		if o.cfg != nil {
			o.cfg(&cfg)
		}
	}
	srv, err := New(cfg, r.table, testLogger(t), r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		if o.srv != nil {
			o.srv(srv)
		}
	}
	r.srv = srv
	ip := "127.0.0.1"
	for _, o := range opts {
		if o.listen != "" {
			ip = o.listen
		}
	}
	pc := listenUDP(t, ip)
	r.srvAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pc.LocalAddr().(*net.UDPAddr).Port}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r.rsip = r.read()
	rsip, err := ParseCommand([]byte(r.rsip))
	if err != nil || rsip.Verb != "RSIP" {
		t.Fatalf("first datagram is not an RSIP: %q (%v)", r.rsip, err)
	}
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", rsip.TransID))
	return r
}

// send writes one datagram from the call agent.
func (r *rig) send(from *net.UDPConn, dg string) {
	r.t.Helper()
	if _, err := from.WriteToUDP([]byte(dg), r.srvAddr); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next datagram at the call agent, skipping repeats of
// gateway commands already seen (their retransmissions).
func (r *rig) read() string {
	r.t.Helper()
	buf := make([]byte, 65536)
	for {
		_ = r.ca.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := r.ca.ReadFromUDP(buf)
		if err != nil {
			r.t.Fatalf("reading at the call agent: %v", err)
		}
		dg := string(buf[:n])
		if !IsResponse([]byte(dg)) {
			if r.seen[dg] {
				continue
			}
			r.seen[dg] = true
		}
		return dg
	}
}

// exchange sends a datagram and returns every datagram the call agent got
// because of it: a sentinel AUEP follows it, and since the server handles
// datagrams in order, everything before the sentinel's answer belongs to it.
func (r *rig) exchange(from *net.UDPConn, dg string) []string {
	r.t.Helper()
	r.send(from, dg)
	return r.drain()
}

func (r *rig) drain() []string {
	r.t.Helper()
	r.sentinel++
	r.send(r.ca, fmt.Sprintf("AUEP %d rtpbridge/1@mgw MGCP 1.0\r\n", r.sentinel))
	prefix := fmt.Sprintf("200 %d ", r.sentinel)
	var got []string
	for {
		dg := r.read()
		if strings.HasPrefix(dg, prefix) {
			return got
		}
		got = append(got, dg)
	}
}

// command sends one command and returns its single final response. A
// provisional 100 (the command ran past slowCommand: a loaded machine
// running the race detector) is RFC 3435 §3.5.6 behaviour, not an answer.
func (r *rig) command(dg string) *Response {
	r.t.Helper()
	got := r.exchange(r.ca, dg)
	if len(got) == 2 && strings.HasPrefix(got[0], "100 ") {
		got = got[1:]
	}
	if len(got) != 1 {
		r.t.Fatalf("%q: got %d datagrams: %q", dg, len(got), got)
	}
	resp, err := ParseResponse([]byte(got[0]))
	if err != nil {
		r.t.Fatalf("response %q: %v", got[0], err)
	}
	return resp
}

// counter reads a counter's value.
func counter(t testing.TB, c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// testRTPConfig is the built-in rtp section on loopback ports lo..hi.
func testRTPConfig(lo, hi int) rtpproxy.Config {
	cfg := rtpproxy.DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax = "127.0.0.1", lo, hi
	return cfg
}
