package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestTenMemberConference: ten tone-tagged members in one conference
// through the binary, three of them on a rough network (5% loss, up to
// 30 ms of jitter that reorders packets). Every member hears every other
// talker and never itself.
func TestTenMemberConference(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	start := g.Metrics(t)
	const n = 10
	const amp = 2500.0 // nine talkers summed stay clear of clipping
	freqs := make([]float64, n)
	for i := range freqs {
		freqs[i] = 300 + 150*float64(i)
	}
	peers := make([]*TonePeer, n)
	for i := range peers {
		pt := uint8(0)
		if i%2 == 1 {
			pt = 8
		}
		peers[i] = NewTonePeer(t, freqs[i], pt)
		peers[i].Amp = amp
		if i%4 == 1 { // members 1, 5, 9
			peers[i].Loss, peers[i].Jitter = 0.05, 30*time.Millisecond
		}
		codec := map[uint8]string{0: "PCMU", 8: "PCMA"}[pt]
		params := map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": peers[i].Port(), "MediaTxCodec": codec, "ConferenceId": "ten"}
		action := "JoinConference"
		if i == 0 {
			action = "CreateConference"
		}
		res := g.MustAction(t, action, params)
		peers[i].Run(rxAddr(t, res), true, freqs...)
	}
	time.Sleep(500 * time.Millisecond) // jitter buffers settle
	for _, p := range peers {
		p.Reset()
	}
	time.Sleep(2 * time.Second)
	for i, p := range peers {
		want := map[float64]bool{}
		for j, f := range freqs {
			want[f] = i != j
		}
		AssertHearingAt(t, fmt.Sprintf("member %d (%.0f Hz)", i, freqs[i]), p, freqs, want, amp)
	}
	if m := g.Metrics(t); m[`mediagw_resources_in_use{pool="conference"}`] != n {
		t.Errorf("conference resources %v, want %d", m[`mediagw_resources_in_use{pool="conference"}`], n)
	}
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": "ten"})
	g.WaitGaugesBack(t, start)
}
