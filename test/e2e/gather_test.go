package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// SIPp plays Debian's RFC 4733 pcap (dtmf_2833_1.pcap) into a conference
// (the mixer hears it) and into the echo route (the leg itself hears it: no
// mixer reads an echo leg's packets); a GatherDigits started over HTTP
// yields that digit on /v1/events, the same digit the stream announced as
// DigitReceived.
func TestGatherDigitsFromSIPpRFC4733(t *testing.T) {
	t.Run("conference", func(t *testing.T) { gatherFromSIPp(t, "conf-dtmf", "dtmf") })
	t.Run("echo", func(t *testing.T) { gatherFromSIPp(t, "echo", "") })
}

func gatherFromSIPp(t *testing.T, user, conference string) {
	sipp := requireTool(t, "sipp")
	g := StartGateway(t, GatewayOptions{})
	events := followEvents(t, g)

	scenario, _ := filepath.Abs("../sipp/uac_pcap.xml")
	sippDone := make(chan error, 1)
	go func() {
		out, err := run(t, time.Minute, sipp, g.SIP, "-sf", scenario, "-s", user, "-m", "1", "-i", "127.0.0.1",
			"-p", "0", "-mp", "0", "-nostdin", "-timeout", "40s")
		if err != nil {
			err = errAppend(err, tail(out, 20))
		}
		sippDone <- err
	}()
	// The SIPp leg joins; gather one digit from it (the pcap's digit comes
	// 8 s into the call).
	var connID string
	deadline := time.Now().Add(10 * time.Second)
	for connID == "" {
		for _, c := range listConnections(t, g) {
			if c.ConferenceID == conference {
				connID = c.ConnectionID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the SIPp leg never joined")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := g.MustAction(t, "GatherDigits", map[string]any{"ConnectionId": connID, "TermCondMaxDigits": 1, "TermCondMaxTime": 20000})
	var heard string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			switch ev.typ {
			case "DigitReceived":
				if ev.data["ConnectionId"] == connID {
					heard = ev.data["Digit"]
				}
			case "GatherDigits_Complete":
				if ev.data["OperationId"] != res["OperationId"] {
					continue
				}
				if ev.data["TerminationCondition"] != "maxdigits" || ev.data["Digits"] == "" || ev.data["Digits"] != heard {
					t.Fatalf("GatherDigits_Complete %v (DigitReceived %q)", ev.data, heard)
				}
				t.Logf("SIPp's RFC 4733 pcap into %s gathered as %q", user, ev.data["Digits"])
				if err := <-sippDone; err != nil {
					t.Fatalf("SIPp: %v", err)
				}
				return
			}
		case <-timeout:
			t.Fatal("no GatherDigits_Complete")
		}
	}
}

type listedConn struct {
	ConnectionID string `json:"ConnectionId"`
	ConferenceID string `json:"ConferenceId"`
	PacketsSent  uint64 `json:"PacketsSent"`
}

func listConnections(t *testing.T, g *Gateway) []listedConn {
	t.Helper()
	resp, err := http.Get(g.HTTP + "/v1/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Connections []listedConn }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Connections
}

type withOutput struct {
	err error
	out string
}

func (w withOutput) Error() string { return w.err.Error() + "\n" + w.out }

func errAppend(err error, out string) error { return withOutput{err, out} }
