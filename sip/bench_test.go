package sip

import (
	"net/netip"
	"testing"
	"time"
)

// Offer/answer runs once per call (or re-INVITE), not per packet.
func BenchmarkSDPOfferAnswer(b *testing.B) {
	offer := []byte(sdpSeeds[1])
	local := localMedia{SessID: 1, Version: 2, Addr: netip.MustParseAddrPort("127.0.0.1:33000"), Ptime: 20 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		d, err := parseSDP(offer)
		if err != nil {
			b.Fatal(err)
		}
		c, _ := pickCodec(d.Formats, []string{"PCMU", "PCMA"})
		local.Formats = []format{c, defaultTE}
		local.Dir = d.effectiveDir().reverse()
		_ = buildSDP(local, d)
	}
}

func BenchmarkRoute(b *testing.B) {
	rules, _ := compileRoutes(append(DefaultRoutes(), Route{Match: `^(?P<user>[0-9]+)$`, Action: ActionBridge, Target: "sip:${user}@pbx"}))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := route(rules, "conf-sales"); !ok {
			b.Fatal("no route")
		}
	}
}
