package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A conference made over the HTTP API survives kill -9 with the embedded
// file store: -check-state lists it while the gateway is down, the restart
// restores the same connections on the same ports, and the three
// tone-tagged members hear each other again within a second of the
// gateway being up; SIGTERM keeps the calls in the state, SIGUSR1 releases
// them (only the ID counters are left).
func TestStateSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.state")
	g := StartGateway(t, GatewayOptions{State: fmt.Sprintf("{store: file, path: %q}", path)})
	tones := []float64{440, 1000, 1800}
	var peers []*TonePeer
	var ids []string
	for _, f := range tones {
		p := NewTonePeer(t, f, 0)
		res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": p.Port(), "MediaTxCodec": "PCMU"})
		ids = append(ids, res["ConnectionId"])
		p.Run(rxAddr(t, res), true, tones...)
		peers = append(peers, p)
	}
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "kept"})
	for _, id := range ids[1:] {
		g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": id, "ConferenceId": "kept"})
	}
	hearAll := func(when string) {
		t.Helper()
		for i, p := range peers {
			want := map[float64]bool{}
			for j, f := range tones {
				if j != i {
					want[f] = true
				}
			}
			AssertHearing(t, fmt.Sprintf("member %d %s", i, when), p, tones, want)
		}
	}
	time.Sleep(time.Second)
	hearAll("before the kill")
	before := map[string]bool{}
	for _, c := range listConnections(t, g) {
		before[c.ConnectionID+"/"+c.ConferenceID] = true
	}

	g.WaitStateWritten(t)
	g.Kill()
	out, err := exec.Command(g.bin, "-config", g.cfgPath, "-check-state").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "conn: 3: ") || !strings.Contains(string(out), "conf: 1: kept") {
		t.Fatalf("-check-state with the gateway down: %v\n%s", err, out)
	}

	g.Restart(t)
	for _, p := range peers {
		p.Reset()
	}
	time.Sleep(time.Second)
	hearAll("a second after the restart")
	after := listConnections(t, g)
	if len(after) != len(before) {
		t.Fatalf("%d connections after the restart, %d before", len(after), len(before))
	}
	for _, c := range after {
		if !before[c.ConnectionID+"/"+c.ConferenceID] {
			t.Fatalf("connection %s in %q after the restart was not there before", c.ConnectionID, c.ConferenceID)
		}
	}
	if !strings.Contains(g.Logs(), "state restored") {
		t.Fatal("the gateway did not log its restore")
	}

	g.Stop() // SIGTERM with a store keeps the calls for the next start
	out, err = exec.Command(g.bin, "-config", g.cfgPath, "-check-state").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "conn: 3: ") || !strings.Contains(string(out), "conf: 1: kept") {
		t.Fatalf("-check-state after SIGTERM (the calls kept): %v\n%s", err, out)
	}
	g.Restart(t)
	g.StopReleasing() // SIGUSR1 releases every call: nothing to restore any more
	out, err = exec.Command(g.bin, "-config", g.cfgPath, "-check-state").CombinedOutput()
	if err != nil || strings.Contains(string(out), "conn:") || strings.Contains(string(out), "conf:") || !strings.Contains(string(out), "ids: 1: table") {
		t.Fatalf("-check-state after a stop that released the calls (none left, the ID counters kept): %v\n%s", err, out)
	}
}
