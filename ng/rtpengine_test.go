package ng

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requirePeers reports whether a missing peer program must fail the test
// (CI, or MEDIAGW_REQUIRE_PEERS set) rather than skip it.
func requirePeers() bool {
	return os.Getenv("CI") != "" || os.Getenv("MEDIAGW_REQUIRE_PEERS") != ""
}

// ngPeer is a relay under the comparison script: ours or rtpengine.
type ngPeer struct {
	name   string
	addr   *net.UDPAddr
	client *net.UDPConn
	n      int
}

func (p *ngPeer) do(t *testing.T, cmd Dict) map[string]any {
	t.Helper()
	p.n++
	return doNG(t, p.client, p.addr, fmt.Sprintf("%s%d", p.name[:1], p.n), cmd)
}

// startRTPengine runs rtpengine (userspace, no kernel table) on loopback:
// ng on a free port, RTP on 38500-38999 (ours take 38000-38499).
func startRTPengine(t *testing.T) *ngPeer {
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		if requirePeers() {
			t.Fatalf("rtpengine is not installed (apt-get install rtpengine-daemon) and CI/MEDIAGW_REQUIRE_PEERS is set: %v", err)
		}
		t.Skip("rtpengine not installed; set CI or MEDIAGW_REQUIRE_PEERS to make this a failure")
	}
	probe := listenUDP(t)
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config-file=none", "--table=-1", "--interface=127.0.0.1",
		fmt.Sprintf("--listen-ng=127.0.0.1:%d", port), "--port-min=38500", "--port-max=38999",
		"--foreground", "--log-stderr", "--log-level=5", "--num-threads=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("rtpengine log:\n%s", logs.String())
		}
	})
	p := &ngPeer{name: "rtpengine", addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, client: listenUDP(t)}
	buf := make([]byte, 4096)
	for i := 0; i < 100; i++ {
		_, _ = p.client.WriteToUDP([]byte(fmt.Sprintf("p%d d7:command4:pinge", i)), p.addr)
		_ = p.client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := p.client.ReadFromUDP(buf); err == nil && bytes.Contains(buf[:n], []byte("pong")) {
			_ = p.client.SetReadDeadline(time.Time{})
			// Drain late pongs of earlier pings.
			for {
				_ = p.client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, _, err := p.client.ReadFromUDP(buf); err != nil {
					break
				}
			}
			return p
		}
	}
	t.Fatalf("rtpengine did not answer ping:\n%s", logs.String())
	return nil
}

func rawNG(t *testing.T, p *ngPeer, dg string) map[string]any {
	t.Helper()
	rep := raw(t, p.client, p.addr, []byte(dg))
	_, b, ok := SplitDatagram(rep)
	if !ok {
		t.Fatalf("%s: reply %q", p.name, rep)
	}
	var dec Decoder
	v, err := dec.Decode(b)
	if err != nil {
		t.Fatalf("%s: reply %q: %v", p.name, rep, err)
	}
	m, _ := toGo(v).(map[string]any)
	return m
}

// portRe finds the port numbers an SDP may differ in.
var portRe = regexp.MustCompile(`(m=\w+ |a=rtcp:)\d+`)

func normSDP(s string) string { return portRe.ReplaceAllString(s, "${1}PORT") }

// diff compares the two replies of one step at the given paths
// ("a.b.0.c"; a path missing in both is no difference).
func diff(name string, ours, theirs map[string]any, paths ...string) []string {
	var out []string
	for _, p := range paths {
		a, okA := lookup(ours, p)
		b, okB := lookup(theirs, p)
		if !okA && !okB {
			continue
		}
		if fmt.Sprint(a) != fmt.Sprint(b) || okA != okB {
			out = append(out, fmt.Sprintf("%s: %s: mediagw %v, rtpengine %v", name, p, show(a, okA), show(b, okB)))
		}
	}
	return out
}

func show(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			var i int
			if _, err := fmt.Sscanf(k, "%d", &i); err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// allowed are the top-level keys of rtpengine's query reply that mediagw
// deliberately does not send (ng/doc.go's table).
var allowed = map[string]bool{
	"SSRC": true, // per-SSRC statistics: not kept
}

// TestSameScriptAsRTPengine runs one ng script against rtpengine and
// mediagw and compares the replies field by field where the protocol
// defines them; the differences it allows are the table in doc.go.
func TestSameScriptAsRTPengine(t *testing.T) {
	theirs := startRTPengine(t)
	r := newRig(t, instant())
	ours := &ngPeer{name: "mediagw", addr: r.addr, client: listenUDP(t)}
	a, b := newPeer(t), newPeer(t)
	var diffs []string
	step := func(name string, cmd Dict, paths ...string) (map[string]any, map[string]any) {
		var o, th map[string]any
		if cmd == nil { // not bencode
			o, th = rawNG(t, ours, "x1 d3:foo"), rawNG(t, theirs, "x1 d3:foo")
		} else {
			o, th = ours.do(t, cmd), theirs.do(t, cmd)
		}
		var bytePaths []string
		for _, p := range paths {
			if strings.HasSuffix(p, ".bytes") {
				bytePaths = append(bytePaths, p)
			} else {
				diffs = append(diffs, diff(name, o, th, p)...)
			}
		}
		// Deliberate: our bytes are RTP payload octets (RFC 3550), rtpengine
		// counts whole packets; with 12-byte headers that is 12 per packet.
		for _, p := range bytePaths {
			ob, _ := lookup(o, p)
			tb, _ := lookup(th, p)
			pk, _ := lookup(o, strings.TrimSuffix(p, "bytes")+"packets")
			on, _ := ob.(int64)
			tn, _ := tb.(int64)
			pn, _ := pk.(int64)
			if on+12*pn != tn || pn == 0 {
				diffs = append(diffs, fmt.Sprintf("%s: %s: mediagw %v payload octets in %v packets, rtpengine %v bytes", name, p, ob, pk, tb))
			}
		}
		return o, th
	}
	sdpA := sdpFor(a.addr(), "a=sendrecv")
	sdpB := sdpFor(b.addr(), "a=sendrecv")
	replace := []string{"origin", "session-connection"}

	step("ping", Dict{"command": "ping"}, "result")
	step("bad bencode", nil, "result", "error-reason")
	step("bogus", Dict{"command": "bogus"}, "result", "error-reason")
	step("offer without sdp", Dict{"command": "offer", "call-id": "c1", "from-tag": "ft"}, "result", "error-reason")
	step("delete unknown", Dict{"command": "delete", "call-id": "nope", "from-tag": "x"}, "result", "warning")
	step("answer unknown", Dict{"command": "answer", "call-id": "nope", "from-tag": "x", "to-tag": "y", "sdp": sdpB}, "result", "error-reason")
	step("query unknown", Dict{"command": "query", "call-id": "nope"}, "result", "error-reason")

	o, th := step("offer", Dict{"command": "offer", "call-id": "c1", "from-tag": "ft", "sdp": sdpA, "replace": replace}, "result")
	if got, want := normSDP(o["sdp"].(string)), normSDP(th["sdp"].(string)); got != want {
		diffs = append(diffs, fmt.Sprintf("offer sdp:\nmediagw:\n%s\nrtpengine:\n%s", got, want))
	}
	bToOurs, bToTheirs := mediaPort(t, o["sdp"].(string)), mediaPort(t, th["sdp"].(string))
	o, th = step("answer", Dict{"command": "answer", "call-id": "c1", "from-tag": "ft", "to-tag": "tt", "sdp": sdpB, "replace": replace}, "result")
	if got, want := normSDP(o["sdp"].(string)), normSDP(th["sdp"].(string)); got != want {
		diffs = append(diffs, fmt.Sprintf("answer sdp:\nmediagw:\n%s\nrtpengine:\n%s", got, want))
	}
	aToOurs, aToTheirs := mediaPort(t, o["sdp"].(string)), mediaPort(t, th["sdp"].(string))

	// Five packets each way through each relay.
	for _, to := range [][2]netip.AddrPort{{aToOurs, bToOurs}, {aToTheirs, bToTheirs}} {
		for i := 0; i < 5; i++ {
			a.send(t, to[0], 1)
			b.recv(t)
			b.send(t, to[1], 2)
			a.recv(t)
		}
	}
	time.Sleep(200 * time.Millisecond) // rtpengine counts on its own thread

	mono := func(tag string) []string {
		p := "tags." + tag + ".medias.0."
		s := p + "streams.0."
		return []string{"tags." + tag + ".tag", p + "index", p + "type", p + "protocol",
			s + "local address", s + "family", s + "endpoint.address", s + "endpoint.port", s + "endpoint.family",
			s + "advertised endpoint.address", s + "advertised endpoint.port",
			s + "stats.packets", s + "stats.bytes",
			"tags." + tag + ".subscriptions.0.tag", "tags." + tag + ".subscribers.0.type"}
	}
	qpaths := append(append([]string{"result", "totals.RTP.packets", "totals.RTP.bytes"}, mono("ft")...), mono("tt")...)
	o, th = step("query", Dict{"command": "query", "call-id": "c1"}, qpaths...)
	// The local port of each tag's stream is the port that tag's endpoint
	// was told to send to, on either relay.
	for _, c := range []struct {
		name string
		rep  map[string]any
		ft   netip.AddrPort
		tt   netip.AddrPort
	}{{"mediagw", o, aToOurs, bToOurs}, {"rtpengine", th, aToTheirs, bToTheirs}} {
		for tag, want := range map[string]uint16{"ft": c.ft.Port(), "tt": c.tt.Port()} {
			if got, _ := lookup(c.rep, "tags."+tag+".medias.0.streams.0.local port"); got != int64(want) {
				diffs = append(diffs, fmt.Sprintf("%s query: tag %s local port %v, want %d", c.name, tag, got, want))
			}
		}
	}
	for _, k := range keys(th) {
		if _, ok := o[k]; !ok && !allowed[k] {
			diffs = append(diffs, fmt.Sprintf("query: key %q only in rtpengine's reply", k))
		}
	}
	// Hold: a re-offer with a=sendonly and the answer's a=recvonly are
	// rewritten again, on the same ports.
	o, th = step("hold offer", Dict{"command": "offer", "call-id": "c1", "from-tag": "ft", "to-tag": "tt",
		"sdp": sdpFor(a.addr(), "a=sendonly"), "replace": replace}, "result")
	if got, want := normSDP(o["sdp"].(string)), normSDP(th["sdp"].(string)); got != want {
		diffs = append(diffs, fmt.Sprintf("hold offer sdp:\nmediagw:\n%s\nrtpengine:\n%s", got, want))
	}
	if mediaPort(t, o["sdp"].(string)) != bToOurs || mediaPort(t, th["sdp"].(string)) != bToTheirs {
		diffs = append(diffs, "hold offer: a relay changed the port it gave B")
	}
	o, th = step("hold answer", Dict{"command": "answer", "call-id": "c1", "from-tag": "ft", "to-tag": "tt",
		"sdp": sdpFor(b.addr(), "a=recvonly"), "replace": replace}, "result")
	if got, want := normSDP(o["sdp"].(string)), normSDP(th["sdp"].(string)); got != want {
		diffs = append(diffs, fmt.Sprintf("hold answer sdp:\nmediagw:\n%s\nrtpengine:\n%s", got, want))
	}
	step("list", Dict{"command": "list"}, "result", "calls")
	o, th = step("statistics", Dict{"command": "statistics"}, "result",
		"statistics.currentstatistics.sessionsown", "statistics.currentstatistics.sessionstotal",
		"statistics.currentstatistics.sessionsforeign", "statistics.currentstatistics.transcodedmedia")
	step("delete", Dict{"command": "delete", "call-id": "c1", "from-tag": "ft", "delete delay": 0},
		append([]string{"result", "warning"}, qpaths[1:]...)...)
	step("query deleted", Dict{"command": "query", "call-id": "c1"}, "result")
	step("list empty", Dict{"command": "list"}, "result", "calls")
	step("fatal delete", Dict{"command": "delete", "call-id": "c1", "flags": []string{"fatal"}}, "result", "error-reason")

	for _, d := range diffs {
		t.Error(d)
	}
}
