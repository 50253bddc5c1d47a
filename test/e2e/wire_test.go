package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireTool finds an external test peer; it is a failure, not a skip,
// when MEDIAGW_REQUIRE_PEERS or CI is set (make test installs them).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MEDIAGW_REQUIRE_PEERS") != "" || os.Getenv("CI") != "" {
			t.Fatalf("%s is required (run test/tools.sh): %v", name, err)
		}
		t.Skipf("%s not installed (run test/tools.sh)", name)
	}
	return path
}

// capture runs tshark on loopback with a capture filter until it has
// count packets or the time is up, and returns the pcap's path. It returns
// once tshark is capturing.
func capture(t *testing.T, filter string, count int, d time.Duration) (path string, wait func()) {
	t.Helper()
	tshark := requireTool(t, "tshark")
	path = filepath.Join(t.TempDir(), "wire.pcap")
	if d := os.Getenv("MEDIAGW_KEEP_PCAP"); d != "" {
		path = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	cmd := exec.CommandContext(ctx, tshark, "-i", "lo", "-f", filter, "-c", strconv.Itoa(count),
		"-a", fmt.Sprintf("duration:%d", int(d.Seconds())), "-w", path)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	// tshark says "Capturing on 'Loopback: lo'" once the capture runs.
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "Capturing on") {
				close(ready)
				_, _ = drainReader(stderr)
				return
			}
			if err != nil {
				close(ready)
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("tshark did not start capturing")
	}
	time.Sleep(time.Second) // "Capturing on" comes a moment before packets are
	t.Logf("tshark capturing (%s)", filter)
	return path, func() {
		err := cmd.Wait()
		cancel()
		t.Logf("tshark done: %v", err)
	}
}

func drainReader(r interface{ Read([]byte) (int, error) }) (int, error) {
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// fields reads a pcap with tshark and returns the chosen fields per packet.
func fields(t *testing.T, pcap string, decodeAs []string, filter string, names ...string) [][]string {
	t.Helper()
	args := []string{"-r", pcap, "-T", "fields", "-E", "separator=|"}
	for _, d := range decodeAs {
		args = append(args, "-d", d)
	}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, n := range names {
		args = append(args, "-e", n)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, out)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "|"))
		}
	}
	return rows
}

// TestWireRTPAndMGCP checks with tshark's dissectors what the gateway puts
// on the wire: its MGCP responses and SDP parse as MGCP/SDP, and the mixed
// RTP it sends a conference member is well-formed RTP/PCMU: version 2,
// 160-byte payloads, one SSRC, consecutive sequence numbers and timestamps
// a whole number of 20 ms frames apart (160, or more after a skipped tick).
func TestWireRTPAndMGCP(t *testing.T) {
	requireTool(t, "tshark")
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr()})
	ca.attach(g)
	freqs := []float64{400, 650, 900}
	peers := make([]*TonePeer, len(freqs))
	for i, f := range freqs {
		peers[i] = NewTonePeer(t, f, 0)
	}
	mgcpPort := ca.gw.Port
	filter := fmt.Sprintf("udp port %d or udp dst port %d", mgcpPort, peers[0].Port())
	pcap, wait := capture(t, filter, 160, 6*time.Second)

	endpoint := "cnf/$@mgw"
	for i := range peers {
		code, params, sdp := ca.do("CRCX {tid} %s MGCP 1.0\r\nC: wire%d\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s",
			endpoint, i, peerSDP(peers[i]))
		if code != 200 {
			t.Fatalf("CRCX %d: %d %v", i, code, params)
		}
		if i == 0 {
			endpoint = params["Z"]
		}
		peers[i].Run(mediaAddr(t, sdp), true, freqs...)
	}
	t.Log("conference set up")
	wait()

	decode := []string{fmt.Sprintf("udp.port==%d,mgcp", mgcpPort), fmt.Sprintf("udp.port==%d,rtp", peers[0].Port())}
	// MGCP: three 200 responses to CRCX, each with an SDP the dissector reads.
	rsp := fields(t, pcap, decode, "mgcp.rsp and udp.srcport=="+strconv.Itoa(mgcpPort),
		"mgcp.rsp.rspcode", "mgcp.param.connectionid", "sdp.media.port", "sdp.connection_info.address")
	if len(rsp) < 3 {
		t.Fatalf("tshark saw %d MGCP responses, want 3: %v", len(rsp), rsp)
	}
	for _, r := range rsp[:3] {
		if r[0] != "200" || r[1] == "" || r[2] == "" || r[3] != "127.0.0.1" {
			t.Errorf("MGCP response as tshark reads it: %v", r)
		}
	}
	// RTP to peer 0, sent by the mixer.
	rows := fields(t, pcap, decode, "rtp and udp.dstport=="+strconv.Itoa(peers[0].Port()),
		"rtp.version", "rtp.p_type", "rtp.seq", "rtp.timestamp", "rtp.ssrc", "udp.length")
	if len(rows) < 50 {
		t.Fatalf("tshark saw %d RTP packets to peer 0, want at least 50", len(rows))
	}
	ssrc := rows[0][4]
	for i, r := range rows {
		if r[0] != "2" || r[1] != "0" || r[5] != "180" || r[4] != ssrc {
			t.Fatalf("packet %d: version %s, PT %s, UDP length %s, SSRC %s (first %s)", i, r[0], r[1], r[5], r[4], ssrc)
		}
		if i == 0 {
			continue
		}
		seq, _ := strconv.Atoi(r[2])
		prev, _ := strconv.Atoi(rows[i-1][2])
		ts, _ := strconv.ParseUint(r[3], 10, 32)
		pts, _ := strconv.ParseUint(rows[i-1][3], 10, 32)
		if uint16(seq-prev) != 1 {
			t.Errorf("packet %d: sequence %d after %d", i, seq, prev)
		}
		if d := uint32(ts - pts); d == 0 || d%160 != 0 || d > 160*3 {
			t.Errorf("packet %d: timestamp %d after %d", i, ts, pts)
		}
	}
}
