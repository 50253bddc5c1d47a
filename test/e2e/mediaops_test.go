package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

type sseEvent struct {
	typ  string
	data map[string]string
}

// followEvents reads /v1/events until the test ends.
func followEvents(t *testing.T, g *Gateway) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", g.HTTP+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan sseEvent, 256)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				var d map[string]string
				_ = json.Unmarshal([]byte(v), &d)
				select {
				case events <- sseEvent{typ, d}:
				default:
				}
			}
		}
	}()
	return events
}

// waitEvent returns the first event of type typ whose OperationId is op.
func waitEvent(t *testing.T, events <-chan sseEvent, typ, op string, d time.Duration) map[string]string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-events:
			if ev.typ == typ && (op == "" || ev.data["OperationId"] == op) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no %s for operation %s within %v", typ, op, d)
		}
	}
}

// sendInbandDTMF sends keys as in-band µ-law DTMF (80 ms on, 80 ms off)
// in 20 ms RTP packets from conn to dst.
func sendInbandDTMF(t *testing.T, conn *net.UDPConn, dst *net.UDPAddr, keys string) {
	t.Helper()
	codes := make([]byte, len(keys))
	for i := range len(keys) {
		codes[i], _ = audio.KeyCode(keys[i])
	}
	src := audio.NewDTMFSource(codes, 80, 80)
	pcm := make([]int16, 160)
	pkt := make([]byte, 12+160)
	seq, ts := uint16(100), uint32(5000)
	next := time.Now()
	for i := 0; i < 200; i++ {
		more := src.Read(pcm)
		pkt[0], pkt[1] = 0x80, 0
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		binary.BigEndian.PutUint32(pkt[8:], 0xd7f0)
		audio.EncodeUlaw(pkt[12:], pcm)
		if _, err := conn.WriteToUDP(pkt, dst); err != nil {
			t.Fatal(err)
		}
		seq++
		ts += 160
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
		if !more && i > 60 {
			return
		}
	}
}

// Play, PlayTone and SendDigits through the binary: a prompt from
// media.dir is heard by every member of a conference (and its
// Play_Complete says eod); SendDigits to a member that negotiated
// telephone-events puts RFC 4733 packets on the wire that tshark's RTPEVENT
// dissector reads as the right keys, each ended three times; in-band DTMF
// sent by a plain G.711 member reaches a GatherDigits.
func TestMediaOperationsThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	prompt := make([]int16, 8000*3/2)
	audio.NewTone(1800, 0, -10, audio.Off).Read(prompt)
	if err := os.WriteFile(filepath.Join(dir, "prompt.wav"), audio.EncodeWAV(prompt, audio.Ulaw), 0o644); err != nil {
		t.Fatal(err)
	}
	recDir := t.TempDir()
	g := StartGateway(t, GatewayOptions{ExtraYAML: "media:\n  dir: " + dir + "\n  record_dir: " + recDir + "\n"})
	events := followEvents(t, g)

	freqs := []float64{440, 1000}
	peers := make([]*TonePeer, 2)
	ids := make([]string, 3)
	for i, f := range freqs {
		peers[i] = NewTonePeer(t, f, 0)
		params := map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": peers[i].Port(), "MediaTxCodec": "PCMU"}
		if i == 0 {
			params["TelephoneEvent"] = 101
		}
		res := g.MustAction(t, "CreateConnection", params)
		ids[i] = res["ConnectionId"]
		peers[i].Run(rxAddr(t, res), true, 440, 1000, 1800)
	}
	dtmfPeer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dtmfPeer.Close()
	res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": dtmfPeer.LocalAddr().(*net.UDPAddr).Port, "MediaTxCodec": "PCMU"})
	ids[2] = res["ConnectionId"]
	dtmfDst := net.UDPAddrFromAddrPort(rxAddr(t, res))
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "ops"})
	for _, id := range ids[1:] {
		g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": id, "ConferenceId": "ops"})
	}
	time.Sleep(300 * time.Millisecond)

	// Play to the conference: both peers hear the prompt, then eod.
	for _, p := range peers {
		p.Reset()
	}
	rec := g.MustAction(t, "Record", map[string]any{"ConferenceId": "ops", "Filename": "ops.wav", "AudioFileEncoding": "ulaw"})["OperationId"]
	op := g.MustAction(t, "Play", map[string]any{"ConferenceId": "ops", "Prompt1": "prompt.wav", "State": "hello"})["OperationId"]
	time.Sleep(time.Second)
	for i, p := range peers {
		if a, _ := p.Heard(1800); a < 300 {
			t.Errorf("peer %d hears the prompt at amplitude %.0f", i, a)
		}
	}
	done := waitEvent(t, events, "Play_Complete", op, 5*time.Second)
	if done["TerminationCondition"] != "eod" || done["State"] != "hello" || done["ConferenceId"] != "ops" {
		t.Fatalf("Play_Complete: %v", done)
	}
	// The file's duration ±40 ms (issue 12).
	if el, _ := strconv.Atoi(done["ElapsedTime"]); el < 1460 || el > 1540 {
		t.Errorf("a 1.5 s prompt took %d ms", el)
	} else {
		t.Logf("a 1.5 s prompt took %d ms", el)
	}
	// The recording of the conference holds the prompt (and the members).
	g.MustAction(t, "StopMediaOperation", map[string]any{"OperationId": rec})
	if d := waitEvent(t, events, "Record_Complete", rec, 5*time.Second); d["Filename"] != "ops.wav" || d["TerminationCondition"] != "userstop" {
		t.Fatalf("Record_Complete: %v", d)
	}
	time.Sleep(200 * time.Millisecond) // the writer patches the header after the stop
	b, err := os.ReadFile(filepath.Join(recDir, "ops.wav"))
	if err != nil {
		t.Fatal(err)
	}
	recorded, enc, err := audio.ParseWAV(b)
	if err != nil || enc != audio.Ulaw || len(recorded) < 8000*3/2 {
		t.Fatalf("ops.wav: %d samples, %v, %v", len(recorded), enc, err)
	}
	loud := 0
	for i := 0; i+160 <= len(recorded); i += 160 {
		if audio.LevelDBm0(recorded[i:i+160]) > -15 {
			loud++
		}
	}
	if loud < 60 {
		t.Errorf("ops.wav has %d loud frames, want the 75 of the prompt", loud)
	}
	if r := g.Action(t, "Play", map[string]any{"ConnectionId": ids[0], "Prompt1": "../x.wav"}); r["ResultCode"] != "27" {
		t.Errorf("escaping prompt: %v", r)
	}
	if r := g.Action(t, "Play", map[string]any{"ConnectionId": ids[0], "Prompt1": "none.wav"}); r["ResultCode"] != "30" {
		t.Errorf("missing prompt: %v", r)
	}

	// PlayTone to peer 1 alone, stopped by StopMediaOperation.
	peers[0].Reset()
	peers[1].Reset()
	op = g.MustAction(t, "PlayTone", map[string]any{"ConnectionId": ids[1], "Frequency1": 1800, "Amplitude1": -10})["OperationId"]
	time.Sleep(800 * time.Millisecond)
	if a, _ := peers[1].Heard(1800); a < 300 {
		t.Errorf("peer 1 does not hear its tone (%.0f)", a)
	}
	if a, _ := peers[0].Heard(1800); a > 150 {
		t.Errorf("peer 0 hears peer 1's tone (%.0f)", a)
	}
	g.MustAction(t, "StopMediaOperation", map[string]any{"ConnectionId": ids[1], "OperationId": op})
	if d := waitEvent(t, events, "PlayTone_Complete", op, 5*time.Second); d["TerminationCondition"] != "userstop" {
		t.Fatalf("PlayTone_Complete: %v", d)
	}

	// SendDigits to peer 0 (telephone-event 101), checked on the wire.
	pcap, wait := capture(t, "udp and dst port "+strconv.Itoa(peers[0].Port()), 2000, 4*time.Second)
	op = g.MustAction(t, "SendDigits", map[string]any{"ConnectionId": ids[0], "Digits": "159#"})["OperationId"]
	if d := waitEvent(t, events, "SendDigits_Complete", op, 10*time.Second); d["TerminationCondition"] != "eod" {
		t.Fatalf("SendDigits_Complete: %v", d)
	}
	wait()
	tshark := requireTool(t, "tshark")
	out, err := run(t, 30*time.Second, tshark, "-r", pcap, "-d", "udp.port=="+strconv.Itoa(peers[0].Port())+",rtp",
		"-o", "rtpevent.event_payload_type_value:101", "-Y", "rtpevent", "-T", "fields",
		"-e", "rtpevent.event_id", "-e", "rtpevent.end_of_event", "-e", "rtp.timestamp", "-e", "rtpevent.duration")
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	var keys []string
	ends := map[string]int{}
	lastTs := ""
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue // tshark's own notes (run as root, ...)
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue
		}
		if f[2] != lastTs {
			keys = append(keys, f[0])
			lastTs = f[2]
		}
		if f[1] == "1" || f[1] == "True" {
			ends[f[2]]++
		}
	}
	if strings.Join(keys, ",") != "1,5,9,11" {
		t.Fatalf("tshark saw events %v, want 1,5,9,11:\n%s", keys, out)
	}
	for ts, n := range ends {
		if n != 3 {
			t.Errorf("event at ts %s ended %d times, want 3", ts, n)
		}
	}
	if len(ends) != 4 {
		t.Errorf("%d events ended, want 4", len(ends))
	}

	// In-band DTMF from the plain G.711 member reaches a GatherDigits.
	op = g.MustAction(t, "GatherDigits", map[string]any{"ConnectionId": ids[2], "TermCondMaxDigits": 3, "TermCondMaxTime": 15000})["OperationId"]
	sendInbandDTMF(t, dtmfPeer, dtmfDst, "42*")
	d := waitEvent(t, events, "GatherDigits_Complete", op, 10*time.Second)
	if d["Digits"] != "42*" || d["TerminationCondition"] != "maxdigits" {
		t.Fatalf("GatherDigits_Complete: %v", d)
	}
	if m := g.Metrics(t); m[`mediagw_dtmf_digits_total{source="inband"}`] != 3 {
		t.Errorf("inband digits counted: %v", m[`mediagw_dtmf_digits_total{source="inband"}`])
	}

	// A key named by TermCondDigit stops a Play with "digit"; a Play cut
	// by the release of its connection ends with "autostop", announced
	// before the ConnectionReleased.
	op = g.MustAction(t, "Play", map[string]any{"ConnectionId": ids[2], "Prompt1": "prompt.wav", "Prompt2": "prompt.wav", "TermCondDigit": "#"})["OperationId"]
	time.Sleep(300 * time.Millisecond)
	sendInbandDTMF(t, dtmfPeer, dtmfDst, "#")
	if d := waitEvent(t, events, "Play_Complete", op, 10*time.Second); d["TerminationCondition"] != "digit" {
		t.Fatalf("Play_Complete after #: %v", d)
	}
	op = g.MustAction(t, "Play", map[string]any{"ConnectionId": ids[2], "Prompt1": "prompt.wav", "Prompt2": "prompt.wav"})["OperationId"]
	time.Sleep(200 * time.Millisecond)
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": ids[2]})
	var order []string
	for deadline := time.After(5 * time.Second); len(order) < 2; {
		select {
		case ev := <-events:
			switch {
			case ev.typ == "Play_Complete" && ev.data["OperationId"] == op:
				if ev.data["TerminationCondition"] != "autostop" {
					t.Fatalf("Play_Complete on release: %v", ev.data)
				}
				order = append(order, ev.typ)
			case ev.typ == "ConnectionReleased" && ev.data["ConnectionId"] == ids[2]:
				order = append(order, ev.typ)
			}
		case <-deadline:
			t.Fatalf("events on release: %v", order)
		}
	}
	if order[0] != "Play_Complete" {
		t.Fatalf("on release: %v, want the Play's autostop first", order)
	}
}
