package e2e

import (
	"bytes"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rxAddr(t testing.TB, res map[string]string) netip.AddrPort {
	t.Helper()
	port, err := strconv.Atoi(res["MediaRxPort"])
	if err != nil {
		t.Fatalf("MediaRxPort in %v", res)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(res["MediaRxIP"]), uint16(port))
}

// TestHTTPConference: three tone peers in one conference through the HTTP
// API each hear the other two and not themselves; then each DeleteConnection
// mode, and /metrics back to where it started.
func TestHTTPConference(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	start := g.Metrics(t)
	freqs := []float64{400, 650, 900}
	laws := []uint8{0, 8, 0} // a mixed-law conference
	peers := make([]*TonePeer, 3)
	ids := make([]string, 3)
	for i, f := range freqs {
		peers[i] = NewTonePeer(t, f, laws[i])
		codec := "PCMU"
		if laws[i] == 8 {
			codec = "PCMA"
		}
		res := g.MustAction(t, "CreateConnection", map[string]any{
			"MediaTxIP": "127.0.0.1", "MediaTxPort": peers[i].Port(), "MediaTxCodec": codec,
		})
		ids[i] = res["ConnectionId"]
		peers[i].Run(rxAddr(t, res), true, freqs...)
	}
	conf := g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "e2e"})
	if conf["ConferenceId"] != "e2e" {
		t.Fatalf("CreateConference: %v", conf)
	}
	for _, id := range ids[1:] {
		g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": id, "ConferenceId": "e2e"})
	}
	time.Sleep(300 * time.Millisecond) // jitter buffers fill
	for _, p := range peers {
		p.Reset()
	}
	time.Sleep(1500 * time.Millisecond)
	for i, p := range peers {
		want := map[float64]bool{}
		for j, f := range freqs {
			want[f] = i != j
		}
		AssertHearing(t, "peer "+strconv.Itoa(i), p, freqs, want)
	}

	m := g.Metrics(t)
	if m["mediagw_connections_active"]-start["mediagw_connections_active"] != 3 ||
		m[`mediagw_resources_in_use{pool="conference"}`] != 3 || m["mediagw_conferences_active"] != 1 {
		t.Fatalf("metrics during the conference: %v", m)
	}

	// Mute peer 0: the others stop hearing it.
	g.MustAction(t, "SetConfereeAttribute", map[string]any{"ConnectionId": ids[0], "ConferenceId": "e2e", "Mute": true})
	time.Sleep(200 * time.Millisecond)
	peers[1].Reset()
	time.Sleep(800 * time.Millisecond)
	AssertHearing(t, "peer 1 with peer 0 muted", peers[1], freqs, map[float64]bool{freqs[2]: true})
	g.MustAction(t, "SetConfereeAttribute", map[string]any{"ConnectionId": ids[0], "ConferenceId": "e2e", "Mute": false})

	// Both IDs: peer 2 leaves the conference; its connection stays.
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": ids[2], "ConferenceId": "e2e"})
	if m := g.Metrics(t); m["mediagw_connections_active"]-start["mediagw_connections_active"] != 3 {
		t.Fatalf("member delete must keep the connection: %v", m["mediagw_connections_active"])
	}
	time.Sleep(200 * time.Millisecond)
	peers[0].Reset()
	peers[2].Reset()
	time.Sleep(800 * time.Millisecond)
	AssertHearing(t, "peer 0 after peer 2 left", peers[0], freqs, map[float64]bool{freqs[1]: true})
	if a, _ := peers[2].Heard(freqs[0]); a > toneAmplitude/20 {
		t.Errorf("peer 2 left the conference but hears peer 0 (amplitude %.0f)", a)
	}
	// Connection only: peer 2's connection goes.
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": ids[2]})
	if r := g.Action(t, "DeleteConnection", map[string]any{"ConnectionId": ids[2]}); r["ResultCode"] != "23" {
		t.Fatalf("second delete: %v", r)
	}
	// Conference only: the rest goes.
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": "e2e"})
	if r := g.Action(t, "DeleteConnection", map[string]any{"ConferenceId": "e2e"}); r["ResultCode"] != "24" {
		t.Fatalf("conference after release: %v", r)
	}
	for _, id := range ids[:2] {
		if r := g.Action(t, "DeleteConnection", map[string]any{"ConnectionId": id}); r["ResultCode"] != "23" {
			t.Fatalf("member %s after conference release: %v", id, r)
		}
	}
	g.WaitGaugesBack(t, start)
	m = g.Metrics(t)
	for _, series := range []string{
		`mediagw_delete_connection_total{result="0",scope="member"}`,
		`mediagw_delete_connection_total{result="0",scope="connection"}`,
		`mediagw_delete_connection_total{result="0",scope="conference"}`,
		`mediagw_delete_connection_total{result="23",scope="connection"}`,
	} {
		if m[series] < 1 {
			t.Errorf("%s = %v", series, m[series])
		}
	}
}

// TestHTTPErrors: the API's own ResultCodes and the bearer token.
func TestHTTPErrors(t *testing.T) {
	g := StartGateway(t, GatewayOptions{ExtraYAML: "  token: \"s3cret\"\n"})
	post := func(action, body, auth string) (int, string) {
		req, _ := http.NewRequest("POST", g.HTTP+"/v1/actions/"+action, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	code, _ := post("DeleteConnection", `{"ConnectionId":"1"}`, "")
	if code != 401 {
		t.Fatalf("no token: HTTP %d", code)
	}
	code, _ = post("DeleteConnection", `{"ConnectionId":"1"}`, "Bearer wrong")
	if code != 401 {
		t.Fatalf("wrong token: HTTP %d", code)
	}
	resp, err := http.Get(g.HTTP + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz must not need the token: %v %v", resp, err)
	}
	resp.Body.Close()
	auth := "Bearer s3cret"
	for _, tc := range []struct{ action, body, code string }{
		{"NoSuchAction", `{}`, `"ResultCode": "21"`},
		{"DeleteConnection", `{"ConnectionId":`, `"ResultCode": "35"`},
		{"DeleteConnection", `{}`, `"ResultCode": "26"`},
		{"DeleteConnection", `{"ConnectionId":"abc"}`, `"ResultCode": "22"`},
		{"DeleteConnection", `{"ConnectionId":"77"}`, `"ResultCode": "23"`},
		{"DeleteConnection", `{"ConferenceId":"nope"}`, `"ResultCode": "24"`},
		{"CreateConnection", `{"MediaTxIP":"127.0.0.1"}`, `"ResultCode": "26"`},
		{"CreateConnection", `{"MediaTxIP":"banana","MediaTxPort":4000}`, `"ResultCode": "27"`},
		{"CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":"70000"}`, `"ResultCode": "27"`},
		{"CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"MediaTxCodec":"opus-ish"}`, `"ResultCode": "27"`},
		{"JoinConference", `{"ConnectionId":"1"}`, `"ResultCode": "26"`},
		{"CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"Timeout":"soon"}`, `"ResultCode": "27"`},
	} {
		_, body := post(tc.action, tc.body, auth)
		if !strings.Contains(body, tc.code) || !strings.Contains(body, `"Branch": "Failure"`) {
			t.Errorf("%s %s: %s, want %s", tc.action, tc.body, body, tc.code)
		}
	}
	// Listings with the token.
	req, _ := http.NewRequest("GET", g.HTTP+"/v1/connections", nil)
	req.Header.Set("Authorization", auth)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connections: %v %v", resp, err)
	}
	resp.Body.Close()
}
