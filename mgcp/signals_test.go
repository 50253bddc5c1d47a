package mgcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/session"
)

// eventsHeard reads RFC 4733 packets (PT 101) arriving at c for d and
// returns the keys in order (one per event timestamp).
func eventsHeard(t *testing.T, c *net.UDPConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 2048)
	var keys []byte
	var lastTs uint32
	seen := false
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if n < 16 || buf[1]&0x7f != 101 {
			continue
		}
		ts := binary.BigEndian.Uint32(buf[4:])
		if !seen || ts != lastTs {
			keys = append(keys, "0123456789*#ABCD"[buf[12]&0x0f])
			lastTs, seen = ts, true
		}
	}
	return string(keys)
}

// RQNT S: D/x sends the digits as RFC 4733 events to the endpoint's
// connections, or to the one @ConnectionId names; a signal on a connection
// on an rtpbridge is sent through a mixer lent for it.
func TestRQNTDigitSignals(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	if resp := r.command(fmt.Sprintf("RQNT 300 %s MGCP 1.0\r\nX: s1\r\nS: D/1, D/#\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d %s", resp.Code, resp.Comment)
	}
	for i, p := range cc.phones {
		if got := eventsHeard(t, p.c, 1500*time.Millisecond); got != "1#" {
			t.Errorf("phone %d heard %q", i, got)
		}
	}
	resp := r.command(fmt.Sprintf("RQNT 301 %s MGCP 1.0\r\nX: s2\r\nS: D/7@%s\r\n", cc.ep, cc.ids[1]))
	if resp.Code != 200 {
		t.Fatalf("RQNT @: %d %s", resp.Code, resp.Comment)
	}
	if got := eventsHeard(t, cc.phones[1].c, time.Second); got != "7" {
		t.Errorf("phone 1 heard %q", got)
	}
	if got := eventsHeard(t, cc.phones[0].c, 300*time.Millisecond); got != "" {
		t.Errorf("phone 0 heard %q sent to phone 1", got)
	}

	// A two-party rtpbridge relays; a mixer is lent to it while it sends.
	pc := listenUDP(t, "127.0.0.1")
	resp = r.command(fmt.Sprintf("CRCX 302 rtpbridge/$@mgw MGCP 1.0\r\nC: c9\r\nM: sendrecv\r\n"+confSDP, pc.LocalAddr().(*net.UDPAddr).Port))
	if resp.Code != 200 {
		t.Fatalf("CRCX rtpbridge: %d", resp.Code)
	}
	ep := resp.Params.Value("Z")
	if resp := r.command(fmt.Sprintf("RQNT 303 %s MGCP 1.0\r\nX: s3\r\nS: D/5\r\n", ep)); resp.Code != 200 {
		t.Fatalf("RQNT S: D/5 on %s: %d %s", ep, resp.Code, resp.Comment)
	}
	if got := eventsHeard(t, pc, time.Second); got != "5" {
		t.Errorf("rtpbridge phone heard %q", got)
	}
}

// loudness reads RTP (PCMU) arriving at c for d and returns the loudest
// 20 ms payload in dBm0 (-100 when nothing came).
func loudness(t *testing.T, c *net.UDPConn, d time.Duration) float64 {
	t.Helper()
	buf := make([]byte, 2048)
	pcm := make([]int16, 160)
	loud := -100.0
	deadline := time.Now().Add(d)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return loud
		}
		if n != 12+160 || buf[1]&0x7f != 0 {
			continue
		}
		audio.DecodeUlaw(pcm, buf[12:n])
		if l := audio.LevelDBm0(pcm); l > loud {
			loud = l
		}
	}
}

// S: A/ann(file:NAME) plays NAME from media.dir to the endpoint; its end
// is A/oc(A/ann) when R: asks for it; a requested digit stops it (no K)
// and then no A/oc comes; a missing file is 514; an rtpbridge relay plays
// it through a lent mixer.
func TestAnnouncement(t *testing.T) {
	dir := t.TempDir()
	for name, ms := range map[string]int{"tone.wav": 300, "long.wav": 4000} {
		pcm := make([]int16, 8*ms)
		audio.NewTone(1000, 0, -10, audio.Off).Read(pcm)
		if err := os.WriteFile(filepath.Join(dir, name), audio.EncodeWAV(pcm, audio.PCM16), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t, rigOption{media: func(m *session.MediaConfig) { m.Dir = dir }})
	ops := make(chan session.OperationResult, 16)
	r.table.Subscribe(func(ev session.Event) {
		if ev.Type == session.OperationComplete {
			select {
			case ops <- *ev.Op:
			default:
			}
		}
	})
	cc := newConfCall(t, r, 2)
	start := time.Now()
	if resp := r.command(fmt.Sprintf("RQNT 400 %s MGCP 1.0\r\nX: a1\r\nR: A/oc(N), A/of(N)\r\nS: A/ann(file:tone.wav)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT A/ann: %d %s", resp.Code, resp.Comment)
	}
	if l := loudness(t, cc.phones[0].c, 250*time.Millisecond); l < -16 {
		t.Errorf("phone 0 heard at most %.1f dBm0 of a -10 dBm0 announcement", l)
	}
	n := r.ntfy(200)
	if o := n.Params.Value("O"); o != "A/oc(A/ann)" || n.Params.Value("X") != "a1" {
		t.Fatalf("NTFY O: %q X: %q", o, n.Params.Value("X"))
	}
	if el := time.Since(start); el < 280*time.Millisecond {
		t.Fatalf("A/oc after %v of a 300 ms announcement", el)
	}
	if op := <-ops; op.TerminationCondition != session.TermEOD {
		t.Fatalf("%+v", op)
	}

	// Barge-in: a requested digit stops the announcement (no K).
	if resp := r.command(fmt.Sprintf("RQNT 401 %s MGCP 1.0\r\nX: a2\r\nR: A/oc(N), D/[0-9](N)\r\nS: A/ann(long.wav)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d %s", resp.Code, resp.Comment)
	}
	time.Sleep(200 * time.Millisecond)
	cc.phones[1].digit('5')
	if o := r.ntfy(200).Params.Value("O"); o != "D/5" {
		t.Fatalf("NTFY O: %q", o)
	}
	select {
	case op := <-ops:
		if op.TerminationCondition != session.TermUserStop || op.Action != "Play" {
			t.Fatalf("%+v", op)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the digit did not stop the announcement")
	}

	// A missing file is A/of when R: asks for it, else 514; a URL with a
	// scheme we do not fetch is 538.
	if resp := r.command(fmt.Sprintf("RQNT 402 %s MGCP 1.0\r\nX: a3\r\nS: A/ann(file:missing.wav)\r\n", cc.ep)); resp.Code != 514 {
		t.Fatalf("missing announcement: %d", resp.Code)
	}
	got := r.exchange(r.ca, fmt.Sprintf("RQNT 406 %s MGCP 1.0\r\nX: a6\r\nR: A/of(N)\r\nS: A/ann(file:missing.wav)\r\n", cc.ep))
	if len(got) != 2 || !strings.HasPrefix(got[0], "200 406 ") || !strings.Contains(got[1], "O: A/of(A/ann)") || !strings.Contains(got[1], "X: a6") {
		t.Fatalf("missing announcement with A/of requested: %q (want the 200, then the NTFY)", got)
	}
	if c, err := ParseCommand([]byte(got[1])); err == nil {
		r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", c.TransID))
	}
	if resp := r.command(fmt.Sprintf("RQNT 403 %s MGCP 1.0\r\nX: a4\r\nS: A/ann(http://x/y.wav)\r\n", cc.ep)); resp.Code != 538 {
		t.Fatalf("http announcement: %d", resp.Code)
	}

	// An rtpbridge relay plays it through a lent mixer.
	pc := listenUDP(t, "127.0.0.1")
	resp := r.command(fmt.Sprintf("CRCX 404 rtpbridge/$@mgw MGCP 1.0\r\nC: c9\r\nM: sendrecv\r\n"+confSDP, pc.LocalAddr().(*net.UDPAddr).Port))
	if resp.Code != 200 {
		t.Fatalf("CRCX rtpbridge: %d", resp.Code)
	}
	ep := resp.Params.Value("Z")
	if resp := r.command(fmt.Sprintf("RQNT 405 %s MGCP 1.0\r\nX: a5\r\nR: A/oc(N)\r\nS: A/ann(tone.wav)\r\n", ep)); resp.Code != 200 {
		t.Fatalf("RQNT A/ann on %s: %d %s", ep, resp.Code, resp.Comment)
	}
	if l := loudness(t, pc, 250*time.Millisecond); l < -16 {
		t.Errorf("rtpbridge phone heard at most %.1f dBm0", l)
	}
	if o := r.ntfy(200).Params.Value("O"); o != "A/oc(A/ann)" {
		t.Fatalf("NTFY O: %q", o)
	}
}

// The G package's time-out tones play on the same generator: G/rt(to=500)
// is ringback (440+480 Hz) heard by the members, and its end after 500 ms
// is G/oc(G/rt); G/cf is brief and reports nothing; G/cg is still 513.
func TestGenericTones(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 2)
	start := time.Now()
	if resp := r.command(fmt.Sprintf("RQNT 500 %s MGCP 1.0\r\nX: g1\r\nR: G/oc(N)\r\nS: G/rt(to=500)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT G/rt: %d %s", resp.Code, resp.Comment)
	}
	if l := loudness(t, cc.phones[1].c, 300*time.Millisecond); l < -25 {
		t.Errorf("phone 1 heard at most %.1f dBm0 of -19 dBm0 ringback", l)
	}
	n := r.ntfy(200)
	if o := n.Params.Value("O"); o != "G/oc(G/rt)" {
		t.Fatalf("NTFY O: %q", o)
	}
	if el := time.Since(start); el < 480*time.Millisecond || el > 3*time.Second {
		t.Fatalf("G/oc after %v of a 500 ms ringback", el)
	}
	if resp := r.command(fmt.Sprintf("RQNT 501 %s MGCP 1.0\r\nX: g2\r\nR: G/oc(N)\r\nS: G/cf\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT G/cf: %d %s", resp.Code, resp.Comment)
	}
	if l := loudness(t, cc.phones[0].c, 400*time.Millisecond); l < -20 {
		t.Errorf("phone 0 heard at most %.1f dBm0 of the confirmation tone", l)
	}
	r.quiet(800 * time.Millisecond) // brief: no G/oc
	tid := 502
	for sig, code := range map[string]int{"G/cg": 513, "G/cf(to=100)": 538, "G/rt(x)": 538} {
		tid++
		if resp := r.command(fmt.Sprintf("RQNT %d %s MGCP 1.0\r\nX: g3\r\nS: %s\r\n", tid, cc.ep, sig)); resp.Code != code {
			t.Errorf("S: %s: %d, want %d", sig, resp.Code, code)
		}
	}
}
