package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mediagw/mediagw/web"
)

// chromiumPath finds Debian's chromium, failing (or skipping without
// MEDIAGW_REQUIRE_PEERS) when it is not installed.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MEDIAGW_REQUIRE_PEERS") != "" {
		t.Fatal("chromium not found (Debian package chromium)")
	}
	t.Skip("chromium not found")
	return ""
}

// newBrowser starts headless Chromium with the flags this closed network
// needs and returns a tab's context, bounded to a minute; the browser is
// stopped at cleanup.
func newBrowser(t *testing.T, browser string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 800))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancel(); cancelCtx(); cancelAlloc() })
	return ctx
}

// switchedTone sends a tone to dst every 20 ms while on, silence frames otherwise.
type switchedTone struct {
	conn *net.UDPConn
	on   atomic.Bool
	stop chan struct{}
	done chan struct{}
}

func newSwitchedTone(t *testing.T) *switchedTone {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &switchedTone{conn: c, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-s.stop:
		default:
			close(s.stop)
			<-s.done
		}
		c.Close()
	})
	return s
}

func (s *switchedTone) run(dst netip.AddrPort, freq float64) {
	go func() {
		defer close(s.done)
		pkt := make([]byte, 12+160)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n, seq := 0, uint16(0); ; seq++ {
			pkt[0], pkt[1] = 0x80, 0
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
			binary.BigEndian.PutUint32(pkt[8:], 0xc0501e)
			amp := 0.0
			if s.on.Load() {
				amp = toneAmplitude
			}
			for i := 0; i < 160; i++ {
				pkt[12+i] = encode(0, int16(amp*math.Sin(2*math.Pi*freq*float64(n)/8000)))
				n++
			}
			_, _ = s.conn.WriteToUDPAddrPort(pkt, dst)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// authAction posts an action with the bearer token.
func authAction(t *testing.T, g *Gateway, token, name string, params map[string]any) map[string]string {
	t.Helper()
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest("POST", g.HTTP+"/v1/actions/"+name, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out["ResultCode"] != "0" {
		t.Fatalf("%s(%v): %v %v", name, params, out, err)
	}
	return out
}

// TestConsole drives the operator console in headless Chromium against a
// gateway holding a 3-member conference: the login box takes the token, the
// members are listed, the talking indicator follows the member that sends
// tone, Mute silences a member for the others (checked on the RTP they
// receive) and Kick releases a connection from the table.
func TestConsole(t *testing.T) {
	browser := chromiumPath(t)
	const token = "night-shift"
	recDir := t.TempDir()
	g := StartGateway(t, GatewayOptions{ExtraYAML: "  token: \"" + token + "\"\nmedia:\n  record_dir: " + recDir + "\n"})

	a := NewTonePeer(t, 400, 0) // talks from the start
	c := NewTonePeer(t, 800, 0) // listens only
	b := newSwitchedTone(t)     // talks when switched on
	bAddr := b.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	create := func(port int) (string, netip.AddrPort) {
		r := authAction(t, g, token, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": port, "MediaTxCodec": "PCMU"})
		return r["ConnectionId"], rxAddr(t, r)
	}
	idA, rxA := create(a.Port())
	idB, rxB := create(int(bAddr.Port()))
	idC, rxC := create(c.Port())
	authAction(t, g, token, "CreateConference", map[string]any{"ConnectionId": idA, "ConferenceId": "night"})
	authAction(t, g, token, "JoinConference", map[string]any{"ConnectionId": idB, "ConferenceId": "night"})
	authAction(t, g, token, "JoinConference", map[string]any{"ConnectionId": idC, "ConferenceId": "night"})
	a.Run(rxA, true)
	b.run(rxB, 600)
	c.Run(rxC, false, 400, 600)

	ctx := newBrowser(t, browser)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, tail(g.Logs(), 20))
		}
	}
	// click clicks the element sel finds, found and clicked in one script:
	// the console re-renders rows as events arrive, so a node looked up by
	// one DevTools call can be gone by the next.
	click := func(what, sel string) {
		t.Helper()
		clicked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
			`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true })()`, sel)))
		if err != nil || !clicked {
			t.Fatalf("%s: %v (found: %v)\n%s", what, err, clicked, tail(g.Logs(), 20))
		}
	}
	// waitJS polls a JavaScript condition in the page.
	waitJS := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, tail(g.Logs(), 20))
		}
	}
	row := func(id string) string {
		return fmt.Sprintf(`document.querySelector('.row.member[data-conn="%s"]')`, id)
	}
	talking := func(id string) string { return row(id) + `.classList.contains('talking')` }

	run("open the console", chromedp.Navigate(g.HTTP+"/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitNotVisible(chromedp.CSS("#login")))
	waitJS("three members listed", `document.querySelectorAll('.row.member').length === 3`)
	waitJS("the live event stream is on (not polling)", `document.getElementById('live-text').textContent === 'live'`)
	waitJS("A talks, B and C do not", fmt.Sprintf(`!!%s && %s && !%s && !%s`, row(idA), talking(idA), talking(idB), talking(idC)))

	b.on.Store(true)
	waitJS("the indicator follows B", fmt.Sprintf(`%s && %s && !%s`, talking(idB), talking(idA), talking(idC)))
	waitJS("B's StartTalking came over the event stream", fmt.Sprintf(`[...document.querySelectorAll('#events li')].some((li) => li.textContent.includes('StartTalking') && li.textContent.includes('ConnectionId=%s'))`, idB))
	c.Reset()
	time.Sleep(time.Second)
	AssertHearing(t, "C before mute", c, []float64{400, 600}, map[float64]bool{400: true, 600: true})

	click("mute A", fmt.Sprintf(`.row.member[data-conn="%s"] button[data-act="mute"]`, idA))
	waitJS("A shows muted and stops talking", fmt.Sprintf(`%s.querySelector('.badge.muted') !== null && !%s && %s`, row(idA), talking(idA), talking(idB)))
	time.Sleep(300 * time.Millisecond) // frames mixed before the mute drain
	c.Reset()
	time.Sleep(time.Second)
	AssertHearing(t, "C after A was muted", c, []float64{400, 600}, map[float64]bool{600: true})

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("MEDIAGW_TEST_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, "console.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", filepath.Join(dir, "console.png"))

	// Record the conference from the console, then stop it: the button
	// follows the operation, Record_Complete arrives, the file is on disk.
	click("record", `button[data-act="record"][data-conf="night"]`)
	waitJS("the Record button became Stop recording", `!!document.querySelector('button[data-act="stoprecord"][data-conf="night"]')`)
	time.Sleep(500 * time.Millisecond)
	click("stop recording", `button[data-act="stoprecord"][data-conf="night"]`)
	waitJS("Record_Complete over the event stream", `[...document.querySelectorAll('#events li')].some((li) => li.textContent.includes('Record_Complete'))`)
	if files, _ := filepath.Glob(filepath.Join(recDir, "*.wav")); len(files) != 1 {
		t.Errorf("recordings on disk: %v", files)
	}

	click("kick B", fmt.Sprintf(`.row.member[data-conn="%s"] button[data-act="kick"]`, idB))
	waitJS("B is gone from the console", fmt.Sprintf(`%s === null && document.querySelectorAll('.row.member').length === 2`, row(idB)))
	req, _ := http.NewRequest("GET", g.HTTP+"/v1/connections", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Connections []struct{ ConnectionId string }
	}
	_ = json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	for _, cn := range list.Connections {
		if cn.ConnectionId == idB {
			t.Fatalf("connection %s is still in the table after Kick", idB)
		}
	}
	if len(list.Connections) != 2 {
		t.Fatalf("%d connections after Kick, want 2", len(list.Connections))
	}
	log, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#events")))
	if err != nil {
		t.Fatalf("event log: %v", err)
	}
	if !strings.Contains(log, "DeleteConnection") || !strings.Contains(log, "SetConfereeAttribute") {
		t.Errorf("the event panel does not show the actions and their ResultCode:\n%s", log)
	}
}

// TestConsoleThousandConnections serves the console with a stand-in API
// holding 1,000 connections in 100 conferences: the page keeps a bounded
// number of row elements (a virtual list) and scrolling reaches the last one.
func TestConsoleThousandConnections(t *testing.T) {
	browser := chromiumPath(t)
	var conns, confs []map[string]any
	now := time.Now().UTC().Format(time.RFC3339)
	for cf := 0; cf < 100; cf++ {
		var members []map[string]any
		for m := 0; m < 10; m++ {
			id := fmt.Sprint(cf*10 + m + 1)
			conns = append(conns, map[string]any{"ConnectionId": id, "ConferenceId": fmt.Sprint("c", cf), "Owner": "sip", "Codec": "PCMU",
				"MediaTxIP": "192.0.2.1", "MediaTxPort": "4000", "PacketsReceived": 10, "PacketsSent": 10, "Created": now})
			members = append(members, map[string]any{"ConnectionId": id, "Talking": m == 0})
		}
		confs = append(confs, map[string]any{"ConferenceId": fmt.Sprint("c", cf), "Kind": "conference", "Mixing": true, "Members": members, "Created": now})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", web.Handler())
	mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"Connections": conns})
	})
	mux.HandleFunc("GET /v1/conferences", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"Conferences": confs})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := newBrowser(t, browser)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll("the list is laid out for every row", `parseInt(document.getElementById('spacer').style.height) >= 1100*30`)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#viewport > .row').length`))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n > 80 {
		t.Fatalf("%d row elements for 1,100 rows: the list is not virtual", n)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('viewport').scrollTop = 1e9`)); err != nil {
		t.Fatal(err)
	}
	poll("the last connection is reachable", `document.querySelector('.row.member[data-conn="1000"]') !== null`)
	poll("talkers marked", `document.querySelector('.row.member[data-conn="991"]').classList.contains('talking')`)
}
