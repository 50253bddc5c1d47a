package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// baresip is Debian's baresip as a headless phone: an aufile source (a WAV
// we write), sndfile dumping what it decodes (what it hears) into a WAV,
// and commands over ctrl_tcp (netstring JSON).
type baresip struct {
	t    *testing.T
	dir  string
	ctrl string
	cmd  *exec.Cmd
	exit chan struct{}
}

// heard is what baresip decoded from the call (sndfile's dump-*-dec.wav).
func (b *baresip) heard() string {
	files, _ := filepath.Glob(filepath.Join(b.dir, "dump-*-dec.wav"))
	if len(files) == 0 {
		b.t.Fatalf("baresip left no decoded dump in %s", b.dir)
	}
	return files[0]
}

func startBaresip(t *testing.T, toneHz float64) *baresip {
	bin := requireTool(t, "baresip")
	dir := t.TempDir()
	pcm := make([]int16, 8000*30)
	audio.NewTone(toneHz, 0, -12, audio.Off).Read(pcm)
	if err := os.WriteFile(filepath.Join(dir, "tone.wav"), audio.EncodeWAV(pcm, audio.PCM16), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctrl := ln.Addr().String()
	ln.Close()
	b := &baresip{t: t, dir: dir, ctrl: ctrl, exit: make(chan struct{})}
	config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:0
net_interface		127.0.0.1
audio_player		aufile,%s
audio_source		aufile,%s
audio_alert		aufile,/dev/null
audio_channels		1
audio_srate		8000
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			account.so
module			menu.so
module			ctrl_tcp.so
module			sndfile.so
snd_path		%s
ctrl_tcp_listen		%s
`, filepath.Join(dir, "unused.wav"), filepath.Join(dir, "tone.wav"), dir, ctrl)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:phone@127.0.0.1>;regint=0;audio_codecs=PCMU\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	b.cmd = exec.Command(bin, "-4", "-f", dir)
	b.cmd.Stdout, b.cmd.Stderr = &logs, &logs
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.exit) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.exit
		if t.Failed() {
			t.Logf("baresip log:\n%s", tail(strings.ReplaceAll(logs.String(), "\r", "\n"), 40))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", ctrl); err == nil {
			c.Close()
			return b
		}
		if time.Now().After(deadline) {
			t.Fatal("baresip's ctrl_tcp never listened")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command runs one menu command ("dial", "transfer", "hangup") and
// returns whether baresip says it went.
func (b *baresip) command(name, params string) {
	b.t.Helper()
	c, err := net.Dial("tcp", b.ctrl)
	if err != nil {
		b.t.Fatal(err)
	}
	defer c.Close()
	body, _ := json.Marshal(map[string]string{"command": name, "params": params, "token": name})
	if _, err := fmt.Fprintf(c, "%d:%s,", len(body), body); err != nil {
		b.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			b.t.Fatalf("baresip %s: no response: %v", name, err)
		}
		s := string(buf[:n])
		if strings.Contains(s, `"response":true`) {
			if !strings.Contains(s, `"ok":true`) {
				b.t.Fatalf("baresip %s %s: %s", name, params, s)
			}
			return
		}
	}
}

func conferenceOf(t *testing.T, g *Gateway, id string) (members int, links []string) {
	t.Helper()
	var list struct {
		Conferences []struct {
			ConferenceID string `json:"ConferenceId"`
			Members      []struct{}
			Links        []string
		}
	}
	resp, err := http.Get(g.HTTP + "/v1/conferences")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Conferences {
		if c.ConferenceID == id {
			return len(c.Members), c.Links
		}
	}
	return -1, nil
}

// A real phone, baresip, in a conference and transferring out of it as
// phones do: dialled into conf-7 it hears the member there (1000 Hz) and
// is heard (440 Hz); its /transfer to conf-8 gets 202 and NOTIFY 200, the
// gateway links conference 7 to 8, and baresip hangs up as RFC 5589
// transferors do; conference 7's remaining member and conference 8's then
// hear each other through the link, and nobody hears itself.
func TestBaresipTransferLinksConferences(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	member := func(conf string, hz float64) *TonePeer {
		p := NewTonePeer(t, hz, 0)
		res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": p.Port(), "MediaTxCodec": "PCMU"})
		g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": res["ConnectionId"], "ConferenceId": conf})
		p.Run(rxAddr(t, res), true, 440, 1000, 1600)
		return p
	}
	p7, p8 := member("7", 1000), member("8", 1600)
	phone := startBaresip(t, 440)
	phone.command("dial", "sip:conf-7@"+g.SIP)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("baresip in conference 7", func() bool { n, _ := conferenceOf(t, g, "7"); return n == 2 })
	time.Sleep(1500 * time.Millisecond)
	if a, _ := p7.Heard(440); a < 300 {
		t.Fatalf("conference 7's member hears baresip at amplitude %.0f", a)
	}

	phone.command("transfer", "sip:conf-8@"+g.SIP)
	waitFor("conference 7 linked to 8", func() bool { _, l := conferenceOf(t, g, "7"); return len(l) == 1 && l[0] == "8" })
	waitFor("baresip hanging up after the transfer", func() bool { n, _ := conferenceOf(t, g, "7"); return n == 1 })
	p7.Reset()
	p8.Reset()
	time.Sleep(1500 * time.Millisecond)
	AssertHearing(t, "conference 7's member", p7, []float64{440, 1000, 1600}, map[float64]bool{1600: true})
	AssertHearing(t, "conference 8's member", p8, []float64{440, 1000, 1600}, map[float64]bool{1000: true})

	// What baresip heard while it was in conference 7: that member.
	b, err := os.ReadFile(phone.heard())
	if err != nil {
		t.Fatalf("baresip's recording: %v", err)
	}
	heard, _, err := audio.ParseWAV(b)
	if err != nil || len(heard) < 8000 {
		t.Fatalf("baresip's recording: %d samples, %v", len(heard), err)
	}
	x := make([]float64, 8000)
	for i := range x {
		x[i] = float64(heard[len(heard)/2-4000+i])
	}
	if p1000, p440 := goertzel(x, 1000), goertzel(x, 440); p1000 < 1e4 || p440 > p1000/10 {
		t.Fatalf("baresip heard 1000 Hz at %.0f and itself (440 Hz) at %.0f", p1000, p440)
	}
}
