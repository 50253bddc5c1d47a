package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A conference route with a PIN, driven by SIPp through the binary: the
// caller hears Asterisk's real conf-getpin prompt, which its first key cuts
// short; keying 4711 by SIP INFO makes it a member of conference 7, sent
// its audio; one keying three wrong entries gets the gateway's BYE and
// never joins; nothing is left either way.
func TestPinRouteWithSIPp(t *testing.T) {
	sipp := requireTool(t, "sipp")
	media := t.TempDir()
	prompt, err := os.ReadFile("/usr/share/asterisk/sounds/en_US_f_Allison/conf-getpin.wav") // test/tools.sh installs it
	if err != nil {
		t.Fatalf("Debian's asterisk-core-sounds-en-wav: %v", err)
	}
	if err := os.WriteFile(filepath.Join(media, "conf-getpin.wav"), prompt, 0o644); err != nil {
		t.Fatal(err)
	}
	g := StartGateway(t, GatewayOptions{ExtraYAML: fmt.Sprintf(`media: {dir: %q}
routes:
  - {match: '^pin-(?P<id>[0-9]+)$', action: conference, pin: "4711", prompt: conf-getpin.wav}
`, media)})
	events := followEvents(t, g)
	// A member already there (HTTP), sending a tone.
	peer := NewTonePeer(t, 700, 0)
	res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": peer.Port(), "MediaTxCodec": "PCMU"})
	member := res["ConnectionId"]
	peer.Run(rxAddr(t, res), true)
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": member, "ConferenceId": "7"})

	sippCall := func(scenario string) chan error {
		done := make(chan error, 1)
		sf, _ := filepath.Abs("../sipp/" + scenario)
		go func() {
			out, err := run(t, time.Minute, sipp, g.SIP, "-sf", sf, "-s", "pin-7", "-m", "1", "-i", "127.0.0.1",
				"-p", "0", "-mp", "0", "-nostdin", "-timeout", "30s")
			if err != nil {
				err = errAppend(err, tail(out, 30))
			}
			done <- err
		}()
		return done
	}

	// Right PIN: SIPp joins within its 4 s in the conference and is sent the mix.
	done := sippCall("pin_ok.xml")
	var joined *listedConn
	deadline := time.Now().Add(15 * time.Second)
	for joined == nil && time.Now().Before(deadline) {
		for _, c := range listConnections(t, g) {
			if c.ConnectionID != member && c.ConferenceID == "7" {
				joined = &c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if joined == nil {
		t.Fatal("the SIPp caller never joined conference 7 after keying 4711")
	}
	time.Sleep(time.Second)
	for _, c := range listConnections(t, g) {
		if c.ConnectionID == joined.ConnectionID && c.PacketsSent < joined.PacketsSent+30 {
			t.Fatalf("the joined caller was sent %d packets in a second of conference", c.PacketsSent-joined.PacketsSent)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("SIPp (right PIN): %v", err)
	}
	// The prompt (about 3 s of speech) was cut by the first key.
	if ev := waitEvent(t, events, "Play_Complete", "", 5*time.Second); ev["State"] != "sip-pin" || ev["TerminationCondition"] != "maxdigits" {
		t.Fatalf("the PIN prompt ended %v", ev)
	}

	// Wrong PIN three times: the gateway hangs up (SIPp expects the BYE).
	done = sippCall("pin_wrong.xml")
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end); {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SIPp (wrong PIN): %v", err)
			}
			if cs := listConnections(t, g); len(cs) != 1 || cs[0].ConnectionID != member {
				t.Fatalf("connections after the wrong PINs: %+v (want only the HTTP member)", cs)
			}
			return
		default:
		}
		for _, c := range listConnections(t, g) {
			if c.ConnectionID != member && c.ConferenceID != "" {
				t.Fatalf("a caller with a wrong PIN joined: %+v", c)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("SIPp (wrong PIN) did not end")
}
