package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// callAgent is a minimal MGCP call agent for the end-to-end tests: it sends
// commands and reads their responses, and answers (200) every command the
// gateway sends it (RSIP, DLCX), keeping those for the test to look at.
type callAgent struct {
	t      testing.TB
	conn   *net.UDPConn
	gw     *net.UDPAddr
	tid    int
	resp   chan string
	mu     sync.Mutex // guards cmds
	cmds   []string
	closed chan struct{}
	done   chan struct{}
}

func newCallAgent(t testing.TB) *callAgent {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ca := &callAgent{t: t, conn: c, resp: make(chan string, 16), closed: make(chan struct{}), done: make(chan struct{})}
	go ca.loop()
	t.Cleanup(ca.close)
	return ca
}

// attach points the call agent's commands at g's MGCP port.
func (ca *callAgent) attach(g *Gateway) {
	gw, err := net.ResolveUDPAddr("udp", g.MGCP)
	if err != nil {
		ca.t.Fatal(err)
	}
	ca.gw = gw
}

func (ca *callAgent) addr() string { return ca.conn.LocalAddr().String() }

func (ca *callAgent) loop() {
	defer close(ca.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := ca.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		head, _, _ := strings.Cut(msg, "\n")
		f := strings.Fields(head)
		if len(f) >= 2 && len(f[0]) == 4 && f[0][0] >= 'A' { // a command from the gateway
			ca.mu.Lock()
			ca.cmds = append(ca.cmds, msg)
			ca.mu.Unlock()
			_, _ = ca.conn.WriteToUDP([]byte("200 "+f[1]+" OK\r\n"), from)
			continue
		}
		select {
		case ca.resp <- msg:
		case <-ca.closed:
			return
		}
	}
}

func (ca *callAgent) close() {
	select {
	case <-ca.closed:
		return
	default:
	}
	close(ca.closed)
	_ = ca.conn.Close()
	<-ca.done
}

// waitCommand waits for the gateway to send a command starting with verb
// and returns the latest such command.
func (ca *callAgent) waitCommand(verb string, within time.Duration, what string) string {
	ca.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var last string
		for _, c := range ca.commands() {
			if strings.HasPrefix(c, verb) {
				last = c
			}
		}
		if last != "" {
			return last
		}
		if time.Now().After(deadline) {
			ca.t.Fatalf("no %s from the gateway %s", verb, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// commands returns the commands the gateway has sent so far.
func (ca *callAgent) commands() []string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return append([]string(nil), ca.cmds...)
}

// do sends one command (tid filled in) and returns the response lines and
// the SDP, retransmitting as a call agent does when nothing comes back.
func (ca *callAgent) do(format string, a ...any) (code int, params map[string]string, sdp string) {
	ca.t.Helper()
	ca.tid++
	text := strings.ReplaceAll(fmt.Sprintf(format, a...), "{tid}", strconv.Itoa(ca.tid))
	for try := 0; try < 4; try++ {
		if _, err := ca.conn.WriteToUDP([]byte(text), ca.gw); err != nil {
			ca.t.Fatal(err)
		}
		select {
		case r := <-ca.resp:
			head, rest, _ := strings.Cut(strings.ReplaceAll(r, "\r\n", "\n"), "\n")
			f := strings.Fields(head)
			if len(f) < 2 || f[1] != strconv.Itoa(ca.tid) {
				ca.t.Fatalf("answer %q to %q", r, text)
			}
			code, _ = strconv.Atoi(f[0])
			params = map[string]string{}
			hdr, body, _ := strings.Cut(rest, "\n\n")
			for _, l := range strings.Split(hdr, "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok {
					params[strings.ToUpper(strings.TrimSpace(k))] = strings.TrimSpace(v)
				}
			}
			return code, params, body
		case <-time.After(2 * time.Second):
		}
	}
	ca.t.Fatalf("no answer to %q", text)
	return 0, nil, ""
}

var (
	sdpPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)
	sdpAddr = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)
	statRe  = regexp.MustCompile(`(PS|OS|PR|OR|PL|JI|LA)=(\d+)`)
)

// mediaAddr reads where the gateway receives from its SDP answer.
func mediaAddr(t testing.TB, sdp string) netip.AddrPort {
	t.Helper()
	p, a := sdpPort.FindStringSubmatch(sdp), sdpAddr.FindStringSubmatch(sdp)
	if p == nil || a == nil {
		t.Fatalf("no address in SDP %q", sdp)
	}
	ap, err := netip.ParseAddrPort(a[1] + ":" + p[1])
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func peerSDP(p *TonePeer) string {
	return fmt.Sprintf("\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n", p.Port())
}

// waitPackets waits until every peer has received at least n packets.
func waitPackets(t testing.TB, n int, peers ...*TonePeer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range peers {
		for {
			_, got := p.Heard(p.Freq)
			if got >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer %.0f Hz received %d packets, want %d", p.Freq, got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestMGCPConference: a call agent builds a three-party conference on
// cnf/$ through the binary; tone-tagged RTP shows each party hears the other
// two and not itself; DLCX of one connection answers 250 with non-zero
// PS and PR; DLCX of the endpoint releases the rest; /metrics returns to
// where it started. Then the gateway announces its shutdown with RSIP.
func TestMGCPConference(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr()})
	ca.attach(g)
	deadline := time.Now().Add(5 * time.Second)
	for len(ca.commands()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no RSIP from the gateway at start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rsip := ca.commands()[0]; !strings.HasPrefix(rsip, "RSIP ") || !strings.Contains(rsip, "RM: restart") {
		t.Fatalf("first command from the gateway: %q", rsip)
	}
	start := g.Metrics(t)

	freqs := []float64{400, 650, 900}
	peers := make([]*TonePeer, len(freqs))
	conns := make([]string, len(freqs))
	endpoint := "cnf/$@mgw"
	for i, f := range freqs {
		peers[i] = NewTonePeer(t, f, 0)
		code, params, sdp := ca.do("CRCX {tid} %s MGCP 1.0\r\nC: call%d\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s",
			endpoint, i, peerSDP(peers[i]))
		if code != 200 {
			t.Fatalf("CRCX %d on %s: %d %v", i, endpoint, code, params)
		}
		if i == 0 {
			endpoint = params["Z"]
			if !strings.HasPrefix(endpoint, "cnf/") {
				t.Fatalf("CRCX on cnf/$ answered Z: %q", endpoint)
			}
		}
		conns[i] = params["I"]
		peers[i].Run(mediaAddr(t, sdp), true, freqs...)
	}

	waitPackets(t, 25, peers...)
	for _, p := range peers {
		p.Reset()
	}
	waitPackets(t, 50, peers...)
	for i, p := range peers {
		want := map[float64]bool{}
		for j, f := range freqs {
			want[f] = j != i
		}
		AssertHearing(t, fmt.Sprintf("party %d", i), p, freqs, want)
	}

	code, params, _ := ca.do("DLCX {tid} %s MGCP 1.0\r\nC: call0\r\nI: %s\r\n", endpoint, conns[0])
	if code != 250 {
		t.Fatalf("DLCX of one connection: %d %v", code, params)
	}
	stats := map[string]int{}
	for _, m := range statRe.FindAllStringSubmatch(params["P"], -1) {
		stats[m[1]], _ = strconv.Atoi(m[2])
	}
	if stats["PS"] == 0 || stats["PR"] == 0 || stats["OS"] == 0 || stats["OR"] == 0 {
		t.Errorf("DLCX 250 statistics %q: want non-zero PS, OS, PR, OR", params["P"])
	}
	if code, params, _ := ca.do("AUEP {tid} %s MGCP 1.0\r\nF: I\r\n", endpoint); code != 200 || params["I"] != conns[1]+", "+conns[2] {
		t.Errorf("AUEP after one DLCX: %d %v", code, params)
	}
	if code, params, _ := ca.do("DLCX {tid} %s MGCP 1.0\r\n", endpoint); code != 200 {
		t.Fatalf("DLCX of the endpoint: %d %v", code, params)
	}
	// The endpoint DLCX ended the conference, so cnf/<id> is unknown now.
	if code, _, _ := ca.do("DLCX {tid} %s MGCP 1.0\r\nC: call1\r\nI: %s\r\n", endpoint, conns[1]); code != 500 {
		t.Errorf("DLCX on the endpoint the endpoint DLCX ended: %d, want 500", code)
	}
	for _, p := range peers {
		p.Close()
	}
	g.WaitGaugesBack(t, start)
	m := g.Metrics(t)
	for _, s := range []string{`mediagw_mgcp_commands_total{code="200",verb="CRCX"}`, `mediagw_mgcp_commands_total{code="250",verb="DLCX"}`} {
		if m[s] < 1 {
			t.Errorf("%s = %v", s, m[s])
		}
	}
	// The call agent released everything itself: the gateway sent no DLCX.
	for _, c := range ca.commands() {
		if strings.HasPrefix(c, "DLCX") {
			t.Errorf("gateway-initiated DLCX for a connection the call agent deleted: %q", c)
		}
	}

	g.Stop()
	cmds := ca.commands()
	if last := cmds[len(cmds)-1]; !strings.HasPrefix(last, "RSIP ") || !strings.Contains(last, "RM: graceful") {
		t.Errorf("last command from the gateway: %q, want RSIP graceful", last)
	}
}

// TestMGCPReleasedByHTTP: a connection the call agent created and the HTTP
// API released is announced to the call agent with a gateway DLCX (E: 904).
func TestMGCPReleasedByHTTP(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr()})
	ca.attach(g)
	start := g.Metrics(t)
	code, params, _ := ca.do("CRCX {tid} rtpbridge/$@mgw MGCP 1.0\r\nC: h1\r\nM: recvonly\r\n")
	if code != 200 {
		t.Fatalf("CRCX: %d %v", code, params)
	}
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": params["I"]})
	dlcx := ca.waitCommand("DLCX", 5*time.Second, "after the HTTP DeleteConnection")
	if !strings.Contains(dlcx, "I: "+params["I"]) || !strings.Contains(dlcx, "E: 904") ||
		!strings.Contains(dlcx, "P: PS=") || !strings.Contains(dlcx, params["Z"]) {
		t.Errorf("gateway DLCX: %q", dlcx)
	}
	g.WaitGaugesBack(t, start)
}

// TestMGCPMediaTimeout: a connection that receives no RTP for
// rtp.media_timeout is released by the gateway and announced to the call
// agent with a DLCX carrying E: 902 (loss of lower layer connectivity).
func TestMGCPMediaTimeout(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr(), MediaTimeout: "1s"})
	ca.attach(g)
	start := g.Metrics(t)
	code, params, _ := ca.do("CRCX {tid} cnf/$@mgw MGCP 1.0\r\nC: quiet\r\nM: confrnce\r\n")
	if code != 200 {
		t.Fatalf("CRCX: %d %v", code, params)
	}
	dlcx := ca.waitCommand("DLCX", 10*time.Second, "after the media timeout")
	if !strings.Contains(dlcx, "I: "+params["I"]) || !strings.Contains(dlcx, "E: 902") ||
		!strings.Contains(dlcx, "C: quiet") || !strings.Contains(dlcx, params["Z"]) {
		t.Errorf("gateway DLCX: %q", dlcx)
	}
	// Its only connection gone, the conference and so cnf/<id> ended with it.
	if code, _, _ := ca.do("DLCX {tid} %s MGCP 1.0\r\nC: quiet\r\nI: %s\r\n", params["Z"], params["I"]); code != 500 {
		t.Errorf("DLCX after the timeout: %d, want 500 (endpoint unknown)", code)
	}
	g.WaitGaugesBack(t, start)
}
