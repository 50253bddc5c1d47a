package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
)

// sipCallee answers every INVITE with its tone peer's SDP (the target of a
// bridge route) and records the BYEs it gets.
type sipCallee struct {
	addr   string
	peer   *TonePeer
	invite chan *gosip.Request
	byes   chan *gosip.Request
}

func newSIPCallee(t testing.TB, name string, peer *TonePeer) *sipCallee {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &sipCallee{addr: pc.LocalAddr().String(), peer: peer, invite: make(chan *gosip.Request, 4), byes: make(chan *gosip.Request, 4)}
	host, port, _ := gosip.ParseAddr(c.addr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(host))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	dsc := sipgo.NewDialogServerCache(cli, gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: name, Host: host, Port: port}})
	srv.OnInvite(func(req *gosip.Request, tx gosip.ServerTransaction) {
		d, err := dsc.ReadInvite(req, tx)
		if err != nil {
			return
		}
		c.invite <- req
		_ = d.RespondSDP([]byte(strings.TrimPrefix(peerSDP(peer), "\r\n")))
	})
	srv.OnAck(func(req *gosip.Request, tx gosip.ServerTransaction) { _ = dsc.ReadAck(req, tx) })
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) {
		if err := dsc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(gosip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		c.byes <- req
	})
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = ua.Close()
	})
	return c
}

// redisProc is Debian's redis-server on a loopback port, without
// persistence: killed, it comes back empty (start again on the same port).
type redisProc struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
}

// startRedisServer runs redis-server on a free loopback port until the
// test ends.
func startRedisServer(t *testing.T) *redisProc {
	t.Helper()
	requireTool(t, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &redisProc{t: t, addr: l.Addr().String(), dir: t.TempDir()}
	l.Close()
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(r.do("PING"), "+PONG") {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer", r.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server at once (SIGKILL): what it held is gone.
func (r *redisProc) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// get returns a string key's value ("" when it is missing).
func (r *redisProc) get(key string) string {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET " + key + "\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	rd := bufio.NewReader(c)
	head, _ := rd.ReadString('\n')
	if !strings.HasPrefix(head, "$") || strings.HasPrefix(head, "$-1") {
		return ""
	}
	val, _ := rd.ReadString('\n')
	return strings.TrimSpace(val)
}

// do sends one inline command and returns the first line of the answer
// ("" when the server does not answer).
func (r *redisProc) do(cmd string) string {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_, _ = c.Write([]byte(cmd + "\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// Calls survive a restart, through the binary, with each store and either
// way of going down (issue 13): a three-member conference of two SIP phones
// and an MGCP connection, and a SIP bridge to a callee, all tone-tagged.
// The gateway is killed (SIGKILL) or stopped (SIGTERM, which keeps the
// calls when a store is configured) and started again on the same state:
// within a second of answering again every member hears the others again
// and nobody hears itself; the call agent gets RSIP disconnected, not
// restart. Then a phone's BYE, the call agent's DLCX of the endpoint and an
// HTTP DeleteConnection of the bridge release everything exactly once: the
// other phones and the callee get one BYE each in their dialogs (the
// callee's with the CSeq after the INVITE's), and the gauges return to
// where they began.
func TestCallsSurviveRestart(t *testing.T) {
	for _, store := range []string{"file", "redis"} {
		for _, how := range []string{"kill", "stop"} {
			t.Run(store+"/"+how, func(t *testing.T) { testCallsSurviveRestart(t, store, how) })
		}
	}
}

func testCallsSurviveRestart(t *testing.T, store, how string) {
	state := fmt.Sprintf("{store: file, path: %q}", t.TempDir()+"/gw.state")
	if store == "redis" {
		state = fmt.Sprintf("{store: redis, redis: {addr: %q, prefix: \"e2e:\"}}", startRedisServer(t).addr)
	}
	tones := []float64{400, 1100, 1700, 600, 2300} // conference A, B (SIP), C (MGCP); bridge caller D, callee E
	peers := make([]*TonePeer, len(tones))
	for i, f := range tones {
		peers[i] = NewTonePeer(t, f, 0)
	}
	callee := newSIPCallee(t, "erin", peers[4])
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr(), State: state, ExtraYAML: fmt.Sprintf(`routes:
  - {match: '^conf-(?P<id>[0-9]+)$', action: conference}
  - {match: '^bridge-(?P<user>[a-z]+)$', action: bridge, target: 'sip:${user}@%s'}
`, callee.addr)})
	ca.attach(g)
	start := g.Metrics(t)

	code, params, sdp := ca.do("CRCX {tid} cnf/77@mgw MGCP 1.0\r\nC: kept\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s", peerSDP(peers[2]))
	if code != 200 {
		t.Fatalf("CRCX on cnf/77: %d %v", code, params)
	}
	peers[2].Run(mediaAddr(t, sdp), true, tones...)
	phoneA, phoneB, phoneD := newSIPPhone(t, "alice"), newSIPPhone(t, "bob"), newSIPPhone(t, "dave")
	dlgA, ans := phoneA.call(g.SIP, "conf-77", peers[0])
	peers[0].Run(mediaAddr(t, ans), true, tones...)
	_, ans = phoneB.call(g.SIP, "conf-77", peers[1])
	peers[1].Run(mediaAddr(t, ans), true, tones...)
	_, ans = phoneD.call(g.SIP, "bridge-erin", peers[3])
	peers[3].Run(mediaAddr(t, ans), true, tones...)
	var inv *gosip.Request
	select {
	case inv = <-callee.invite:
	case <-time.After(5 * time.Second):
		t.Fatal("the callee got no INVITE")
	}
	peers[4].Run(mediaAddr(t, string(inv.Body())), true, tones...)

	hears := []map[float64]bool{ // who hears whom
		{1100: true, 1700: true}, {400: true, 1700: true}, {400: true, 1100: true}, {2300: true}, {600: true},
	}
	check := func(when string) {
		t.Helper()
		for i, p := range peers {
			AssertHearing(t, fmt.Sprintf("peer %.0f Hz %s", tones[i], when), p, tones, hears[i])
		}
	}
	waitPackets(t, 25, peers...)
	for _, p := range peers {
		p.Reset()
	}
	waitPackets(t, 40, peers...)
	check("before the restart")
	before := map[string]string{}
	for _, c := range listConnections(t, g) {
		before[c.ConnectionID] = c.ConferenceID
	}
	if len(before) != 5 {
		t.Fatalf("%d connections before the restart, want 5", len(before))
	}

	if how == "kill" {
		g.WaitStateWritten(t)
		g.Kill()
	} else {
		g.Stop()
		if !strings.Contains(g.Logs(), "stopping with the calls kept") {
			t.Fatal("SIGTERM with a store did not keep the calls")
		}
	}
	for _, p := range peers {
		p.Reset()
	}
	rsips := len(ca.commands())
	g.Restart(t)
	up := time.Now()
	deadline := up.Add(3 * time.Second)
	for _, p := range peers {
		for {
			if _, n := p.Heard(p.Freq); n >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer %.0f Hz hears nothing 3 s after the restart", p.Freq)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	gap := time.Since(up)
	t.Logf("%s/%s: every peer receiving again %v after the gateway answered /healthz", store, how, gap.Round(time.Millisecond))
	if gap > time.Second {
		t.Errorf("media back %v after the restart, want within 1 s", gap)
	}
	for _, p := range peers {
		p.Reset()
	}
	waitPackets(t, 40, peers...)
	check("after the restart")
	after := listConnections(t, g)
	if len(after) != len(before) {
		t.Fatalf("%d connections after the restart, %d before", len(after), len(before))
	}
	for _, c := range after {
		if conf, ok := before[c.ConnectionID]; !ok || conf != c.ConferenceID {
			t.Fatalf("connection %s in %q after the restart; before: %v", c.ConnectionID, c.ConferenceID, before)
		}
	}
	rsip := ""
	for _, c := range ca.commands()[rsips:] {
		if strings.HasPrefix(c, "RSIP") {
			rsip = c
		}
	}
	if !strings.Contains(rsip, "RM: disconnected") {
		t.Errorf("RSIP after a restart that kept the connections: %q, want RM: disconnected", rsip)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dlgA.Bye(ctx); err != nil {
		t.Fatalf("alice's BYE after the restart: %v", err)
	}
	if code, params, _ := ca.do("DLCX {tid} cnf/77@mgw MGCP 1.0\r\n"); code != 200 {
		t.Fatalf("DLCX of cnf/77 after the restart: %d %v", code, params)
	}
	phoneB.expectBye("bob")
	bridge := ""
	for _, c := range listConnections(t, g) {
		bridge = c.ConferenceID // only the bridge is left
	}
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": bridge})
	phoneD.expectBye("dave")
	select {
	case bye := <-callee.byes:
		if got, want := bye.CSeq().SeqNo, inv.CSeq().SeqNo+1; got != want {
			t.Errorf("the callee's BYE has CSeq %d, want %d (the one after the INVITE's)", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the callee got no BYE")
	}
	g.WaitGaugesBack(t, start)
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-phoneB.byes:
		t.Errorf("bob got a second BYE: %v", r.StartLine())
	case r := <-callee.byes:
		t.Errorf("the callee got a second BYE: %v", r.StartLine())
	case r := <-phoneD.byes:
		t.Errorf("dave got a second BYE: %v", r.StartLine())
	default:
	}
	if n := len(listConnections(t, g)); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	if !strings.Contains(g.Logs(), "mgcp_connections=1") || !strings.Contains(g.Logs(), "sip_dialogs=4") {
		t.Error("the restart did not log 4 SIP dialogs (3 callers, the callee) and 1 MGCP connection restored")
	}
}
