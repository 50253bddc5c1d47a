package mgcp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// mgcpPeer is a gateway under the comparison script: ours or osmo-mgw.
type mgcpPeer struct {
	name  string
	addr  *net.UDPAddr
	conn  *net.UDPConn
	anyEP string // "any free rtpbridge endpoint"
}

// do sends a datagram and returns the answer, or "" when none came.
func (p *mgcpPeer) do(t *testing.T, dg string, wait time.Duration) string {
	t.Helper()
	if _, err := p.conn.WriteToUDP([]byte(dg), p.addr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(wait))
		n, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return ""
		}
		if IsResponse(buf[:n]) { // skip any gateway command (ours: none in this script)
			return string(buf[:n])
		}
	}
}

// startOsmoMGW runs osmo-mgw on loopback: MGCP on a free UDP port, RTP on
// 32500-32999 (this package's test ports; ours take 32000-32499).
func startOsmoMGW(t *testing.T) *mgcpPeer {
	bin, err := exec.LookPath("osmo-mgw")
	if err != nil {
		if requirePeers() {
			t.Fatalf("osmo-mgw is not installed (apt-get install osmo-mgw) and CI/MEDIAGW_REQUIRE_PEERS is set: %v", err)
		}
		t.Skip("osmo-mgw not installed; set CI or MEDIAGW_REQUIRE_PEERS to make this a failure")
	}
	tmpl, err := os.ReadFile("testdata/osmo-mgw.cfg")
	if err != nil {
		t.Fatal(err)
	}
	client := listenUDP(t, "127.0.0.1")
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		probe := listenUDP(t, "127.0.0.1") // a free port for osmo-mgw's MGCP socket
		port := probe.LocalAddr().(*net.UDPAddr).Port
		probe.Close()
		cfg := filepath.Join(t.TempDir(), "osmo-mgw.cfg")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(string(tmpl), port, 32500, 32999)), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "-c", cfg)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 3 * time.Second
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("starting osmo-mgw: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		p := &mgcpPeer{name: "osmo-mgw", addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, conn: client, anyEP: "rtpbridge/*@mgw"}
		// Ready when it answers an audit (the VTY and CTRL ports it also
		// binds are fixed, so another osmo-mgw on this machine makes it exit).
		for i := 0; i < 50; i++ {
			select {
			case <-exited:
				i = 50
				continue
			default:
			}
			if r := p.do(t, fmt.Sprintf("AUEP %d rtpbridge/1@mgw MGCP 1.0\r\n", 900000+i), 100*time.Millisecond); strings.HasPrefix(r, "200 ") {
				t.Cleanup(func() {
					cancel()
					<-exited
				})
				return p
			}
		}
		cancel()
		<-exited
		lastErr = stderr.String()
		time.Sleep(time.Second)
	}
	t.Fatalf("osmo-mgw did not come up: %s", lastErr)
	return nil
}

// step is one command of the comparison script; want is the code both
// gateways must answer with.
type step struct {
	what string
	dg   string // with {any}, {ep}, {i1}, {i2}
	want string // three-digit code
}

const compareSDP = "\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"

var compareScript = []step{
	{"CRCX on any free bridge", "CRCX 1 {any} MGCP 1.0\r\nC: 5a1\r\nM: sendrecv\r\nL: p:20, a:PCMU\r\n" + fmt.Sprintf(compareSDP, 4000), "200"},
	{"second CRCX on that bridge", "CRCX 2 {ep} MGCP 1.0\r\nC: 5a1\r\nM: sendrecv\r\nL: p:20, a:PCMU\r\n" + fmt.Sprintf(compareSDP, 4002), "200"},
	{"third CRCX: per-endpoint limit", "CRCX 3 {ep} MGCP 1.0\r\nC: 5a1\r\nM: sendrecv\r\n" + fmt.Sprintf(compareSDP, 4006), "540"},
	{"MDCX new remote", "MDCX 4 {ep} MGCP 1.0\r\nC: 5a1\r\nI: {i1}\r\nM: sendrecv\r\n" + fmt.Sprintf(compareSDP, 4004), "200"},
	{"RQNT for digits", "RQNT 40 {ep} MGCP 1.0\r\nX: 1\r\nR: D/[0-9#*](N)\r\n", "200"},
	{"DLCX endpoint+C+I", "DLCX 5 {ep} MGCP 1.0\r\nC: 5a1\r\nI: {i2}\r\n", "250"},
	{"the same DLCX datagram again", "DLCX 5 {ep} MGCP 1.0\r\nC: 5a1\r\nI: {i2}\r\n", "250"},
	{"DLCX of the deleted (unknown) connection", "DLCX 6 {ep} MGCP 1.0\r\nC: 5a1\r\nI: {i2}\r\n", "515"},
	{"DLCX with a wrong call ID", "DLCX 7 {ep} MGCP 1.0\r\nC: wrong\r\nI: {i1}\r\n", "516"},
	{"DLCX endpoint+C", "DLCX 8 {ep} MGCP 1.0\r\nC: 5a1\r\n", "200"},
	{"DLCX of an idle endpoint", "DLCX 9 {ep} MGCP 1.0\r\n", "515"},
	{"CRCX without C", "CRCX 10 {any} MGCP 1.0\r\nM: sendrecv\r\n" + fmt.Sprintf(compareSDP, 4000), "516"},
	{"CRCX mode confrnce on a bridge", "CRCX 11 {any} MGCP 1.0\r\nC: 1\r\nM: confrnce\r\n" + fmt.Sprintf(compareSDP, 4000), "517"},
	{"malformed command line", "CRCX 12 {any}\r\n", "510"},
	{"MGCP 2.0", "CRCX 13 {any} MGCP 2.0\r\nC: 1\r\nM: sendrecv\r\n", "528"},
	{"DLCX of every bridge", "DLCX 14 rtpbridge/*@mgw MGCP 1.0\r\n", "200"},
	{"unknown endpoint", "DLCX 15 nosuch/1@mgw MGCP 1.0\r\n", "500"},
}

// differences are where we depart from osmo-mgw 1.10 on purpose; "" is no answer.
var differences = []struct {
	what, dg, ours, osmo string
}{
	{"unknown verb: RFC 3435 says 504; osmo-mgw does not answer", "XYZW 20 rtpbridge/1@mgw MGCP 1.0\r\n", "504", ""},
	{"K: response acknowledgement: we honour it, osmo-mgw refuses it", "CRCX 21 {any} MGCP 1.0\r\nC: k1\r\nM: recvonly\r\nK: 5-7\r\n", "200", "539"},
	{"piggybacking: we answer each message, osmo-mgw refuses it", "CRCX 22 {any} MGCP 1.0\r\nC: p1\r\nM: recvonly\r\n.\r\nAUEP 23 rtpbridge/1@mgw MGCP 1.0\r\n", "200", "539"},
	{"conference endpoints: ours (a CRCX creates cnf/<id>), unknown to osmo-mgw", "CRCX 24 cnf/1@mgw MGCP 1.0\r\nC: c1\r\nM: confrnce\r\n", "200", "500"},
	{"RQNT for a package RFC 3660 does not define: we refuse it, osmo-mgw accepts (and ignores) every RQNT", "RQNT 26 rtpbridge/1@mgw MGCP 1.0\r\nX: 1\r\nR: Z/1(N)\r\n", "518", "200"},
	{"RQNT with a signal: we cannot generate it yet and say so, osmo-mgw answers 200", "RQNT 27 rtpbridge/1@mgw MGCP 1.0\r\nX: 1\r\nS: L/rg\r\n", "513", "200"},
	{"RQNT without X: (RFC 3435 requires it): 510, osmo-mgw answers 200", "RQNT 28 rtpbridge/1@mgw MGCP 1.0\r\nR: D/1(N)\r\n", "510", "200"},
	{"an unknown endpoint is 500 for both, a cnf/<id> without its conference included", "AUEP 25 cnf/404@mgw MGCP 1.0\r\n", "500", "500"},
}

// TestCompareOsmoMGW runs one two-party rtpbridge script against osmo-mgw
// (a second process) and against our server and asserts the same codes.
func TestCompareOsmoMGW(t *testing.T) {
	osmo := startOsmoMGW(t)
	r := newRig(t, rigOption{ports: [2]int{32000, 32499}})
	ours := &mgcpPeer{name: "mediagw", addr: r.srvAddr, conn: r.ca, anyEP: "rtpbridge/$@mgw"}

	for _, p := range []*mgcpPeer{ours, osmo} {
		vars := map[string]string{"{any}": p.anyEP}
		var dlcx250 string
		for _, s := range compareScript {
			dg := s.dg
			for k, v := range vars {
				dg = strings.ReplaceAll(dg, k, v)
			}
			got := p.do(t, dg, 2*time.Second)
			code, _, _ := strings.Cut(got, " ")
			if code != s.want {
				t.Errorf("%s: %s: got %q, want %s", p.name, s.what, got, s.want)
				continue
			}
			resp, err := ParseResponse([]byte(got))
			if err != nil {
				t.Fatalf("%s: %s: %q: %v", p.name, s.what, got, err)
			}
			switch {
			case strings.HasPrefix(dg, "CRCX 1 "):
				vars["{ep}"], vars["{i1}"] = resp.Params.Value("Z"), resp.Params.Value("I")
			case strings.HasPrefix(dg, "CRCX 2 "):
				vars["{i2}"] = resp.Params.Value("I")
			case strings.HasPrefix(dg, "DLCX 5 "):
				if dlcx250 != "" && got != dlcx250 {
					t.Errorf("%s: retransmitted DLCX answered differently:\n%q\n%q", p.name, dlcx250, got)
				}
				dlcx250 = got
				if !strings.HasPrefix(resp.Params.Value("P"), "PS=") {
					t.Errorf("%s: 250 without P: statistics: %q", p.name, got)
				}
			}
		}
	}
	for _, d := range differences {
		for _, c := range []struct {
			p    *mgcpPeer
			want string
		}{{ours, d.ours}, {osmo, d.osmo}} {
			wait := 2 * time.Second
			if c.want == "" {
				wait = 300 * time.Millisecond
			}
			code, _, _ := strings.Cut(c.p.do(t, strings.ReplaceAll(d.dg, "{any}", c.p.anyEP), wait), " ")
			if code != c.want {
				t.Errorf("%s: %s: got code %q, want %q", c.p.name, d.what, code, c.want)
			}
		}
	}
}
