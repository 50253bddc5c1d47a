package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A port pair taken by another process while the gateway was down costs
// that connection only: the SIP phone whose media port is taken gets a BYE
// in its restored dialog, the call agent whose connection's port is taken
// gets a DLCX with E: 900, and the other member stays in the conference
// and hears again.
func TestStatePortTaken(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr(), State: fmt.Sprintf("{store: file, path: %q}", filepath.Join(t.TempDir(), "gw.state"))})
	ca.attach(g)
	tones := []float64{500, 1300, 2100}
	peers := []*TonePeer{NewTonePeer(t, tones[0], 0), NewTonePeer(t, tones[1], 0), NewTonePeer(t, tones[2], 0)}
	code, params, sdp := ca.do("CRCX {tid} cnf/5@mgw MGCP 1.0\r\nC: taken\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s", peerSDP(peers[2]))
	if code != 200 {
		t.Fatalf("CRCX: %d %v", code, params)
	}
	mgcpConn, mgcpPort := params["I"], mediaAddr(t, sdp)
	peers[2].Run(mgcpPort, true, tones...)
	alice, bob := newSIPPhone(t, "alice"), newSIPPhone(t, "bob")
	_, ans := alice.call(g.SIP, "conf-5", peers[0])
	alicePort := mediaAddr(t, ans)
	peers[0].Run(alicePort, true, tones...)
	_, ans = bob.call(g.SIP, "conf-5", peers[1])
	peers[1].Run(mediaAddr(t, ans), true, tones...)
	waitPackets(t, 25, peers...)

	g.Kill()
	for _, ap := range []string{alicePort.String(), mgcpPort.String()} {
		pc, err := net.ListenPacket("udp", ap)
		if err != nil {
			t.Fatalf("taking %s: %v", ap, err)
		}
		defer pc.Close()
	}
	g.Restart(t)
	if r := alice.expectBye("alice, whose media port was taken"); r.GetHeader("Reason") == nil || !strings.Contains(r.GetHeader("Reason").Value(), "not restored") {
		t.Errorf("alice's BYE Reason %v", r.GetHeader("Reason"))
	}
	dlcx := ca.waitCommand("DLCX", 5*time.Second, "for the connection whose port was taken")
	if !strings.Contains(dlcx, "I: "+mgcpConn) || !strings.Contains(dlcx, "E: 900") {
		t.Errorf("DLCX %q, want I: %s and E: 900", dlcx, mgcpConn)
	}
	conns := listConnections(t, g)
	if len(conns) != 1 || conns[0].ConferenceID != "5" {
		t.Fatalf("after the restart: %+v, want bob alone in conference 5", conns)
	}
	if !strings.Contains(g.Logs(), "was taken meanwhile") {
		t.Error("no log line names the taken port")
	}
}

// A state file that is not a state (truncated, overwritten) does not stop
// the gateway: it is kept aside under a new name, the start logs it, and
// the gateway works on a fresh state.
func TestStateCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.state")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := StartGateway(t, GatewayOptions{State: fmt.Sprintf("{store: file, path: %q}", path)})
	if !strings.Contains(g.Logs(), "state file corrupt") {
		t.Fatalf("the start did not log the corrupt state file:\n%s", g.Logs())
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt file kept aside as %v, want one file", aside)
	}
	p := NewTonePeer(t, 700, 0)
	g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": p.Port(), "MediaTxCodec": "PCMU"})
}

// Redis as the store, and what goes wrong with it: restarted empty while
// the gateway runs (the updates made meanwhile fail and are counted, and
// once it is back the gateway writes its whole state again, so a crash
// after that restores everything, including what was made while Redis was
// down); a second gateway on the same prefix is refused; Redis down at
// start stops the start with a clear error.
func TestStateRedisFaults(t *testing.T) {
	r := startRedisServer(t)
	g := StartGateway(t, GatewayOptions{State: fmt.Sprintf("{store: redis, redis: {addr: %q, prefix: \"faults:\"}}", r.addr)})
	var ids []string
	create := func() {
		t.Helper()
		p := NewTonePeer(t, 800, 0)
		res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": p.Port(), "MediaTxCodec": "PCMU"})
		ids = append(ids, res["ConnectionId"])
		if len(ids) == 1 {
			g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "r"})
		} else {
			g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": ids[len(ids)-1], "ConferenceId": "r"})
		}
	}
	create()
	create()
	waitScard := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := r.do("SCARD faults:idx:conn")
			if got == fmt.Sprintf(":%d", n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Redis holds %q connections, want %d", got, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitScard(2, 5*time.Second)

	r.kill()
	create() // its writes fail while Redis is down
	deadline := time.Now().Add(10 * time.Second)
	for g.Metrics(t)["mediagw_state_write_errors_total"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no write error counted while Redis was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.start() // empty
	waitScard(3, 15*time.Second)
	if !strings.Contains(g.Logs(), "resumed") {
		t.Error("the gateway did not log that its writes resumed")
	}

	// A second gateway on the same prefix is refused while the first runs.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, g.bin, "-config", g.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another gateway") {
		t.Fatalf("a second gateway on the same Redis prefix: %v\n%s", err, tail(string(out), 10))
	}

	g.Kill()
	g.Restart(t)
	conns := listConnections(t, g)
	if len(conns) != 3 {
		t.Fatalf("%d connections restored from Redis, want 3 (one made while it was down)", len(conns))
	}
	for _, c := range conns {
		if c.ConferenceID != "r" {
			t.Fatalf("connection %s restored in %q, want conference r", c.ConnectionID, c.ConferenceID)
		}
	}

	g.Kill()
	r.kill()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	out, err = exec.CommandContext(ctx2, g.bin, "-config", g.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "state") || !strings.Contains(string(out), "unavailable") {
		t.Fatalf("start with Redis down: %v\n%s", err, tail(string(out), 10))
	}
}
