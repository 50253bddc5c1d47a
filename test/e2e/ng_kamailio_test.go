package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kamailio with deploy/kamailio/kamailio.cfg in front of mediagw's ng
// front: SIPp uac → Kamailio → SIPp uas, the media through mediagw.

// Ports of these tests, in the e2e ranges (docs/contracts.md) that
// StartGateway's blocks leave free: ng fronts at 36920+n, SIPp media at
// 34900 (caller) and 34920 (callee); SIPp signalling and Kamailio take
// ports in the first gateway's signalling block.
const (
	ngPortBase   = 36920
	uacMediaPort = 34900
	uasMediaPort = 34920
)

var ngStarts int

// startNGGateway runs a gateway with its ng front on, deleting at once
// (the test checks that a BYE frees the ports; rtpengine's 30 s delay is
// the shipped default), and returns the ng port and the base of the
// gateway's signalling block.
func startNGGateway(t *testing.T) (g *Gateway, ng, sig int) {
	ng = ngPortBase + ngStarts%10
	ngStarts++
	g = StartGateway(t, GatewayOptions{ExtraYAML: fmt.Sprintf("ng:\n  listen: \"udp://127.0.0.1:%d\"\n  delete_delay: 0s\n", ng)})
	_, p, _ := net.SplitHostPort(g.SIP)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return g, ng, n - 60
}

// kamailio is a running Kamailio.
type kamailio struct {
	cmd  *exec.Cmd
	port int
	logs *lockedBuffer
	done chan struct{}
}

// startKamailio runs Kamailio on 127.0.0.1:port with the rtpengine set
// sock, relaying every call to the callee port.
func startKamailio(t *testing.T, port int, sock string, callee int) *kamailio {
	t.Helper()
	return runKamailio(t, "../../deploy/kamailio/kamailio.cfg", port,
		fmt.Sprintf("RTPENGINE_SOCK=%q", sock), fmt.Sprintf("CALLEE=\"sip:127.0.0.1:%d\"", callee))
}

// runKamailio runs Kamailio with the config file cfgPath on
// 127.0.0.1:port (the LISTEN define), with more -A defines, until the test
// ends; it returns once Kamailio answers an OPTIONS.
func runKamailio(t *testing.T, cfgPath string, port int, defines ...string) *kamailio {
	t.Helper()
	bin := requireTool(t, "kamailio")
	cfg, err := filepath.Abs(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &kamailio{port: port, logs: &lockedBuffer{}, done: make(chan struct{})}
	args := []string{"-f", cfg, "-DD", "-E", "-Y", dir, "-w", dir, "-A", fmt.Sprintf("LISTEN=udp:127.0.0.1:%d", port)}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	k.cmd = exec.Command(bin, args...)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.done
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", tail(k.logs.String(), 40))
		}
	})
	// Ready once it answers an OPTIONS (405 from the config).
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		opt := fmt.Sprintf("OPTIONS sip:ping@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKping%d\r\n"+
			"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: ping%d\r\nCSeq: 1 OPTIONS\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", port, c.LocalAddr(), i, i)
		_, _ = c.WriteToUDP([]byte(opt), to)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := c.ReadFromUDP(buf); err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			return k
		}
		select {
		case <-k.done:
			t.Fatalf("kamailio exited during start:\n%s", k.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio not answering after 20s:\n%s", k.logs.String())
		}
	}
}

// ngScenarios renders test/sipp/ng's templates for a gateway: @GW_PORT@
// matches its RTP ports only, @PCAP@ is a 1 s cut of SIPp's G.711 A-law
// capture (50 packets).
func ngScenarios(t *testing.T, g *Gateway) string {
	t.Helper()
	editcap := requireTool(t, "editcap")
	pcap := filepath.Join(t.TempDir(), "g711a-1s.pcap")
	if out, err := exec.Command(editcap, "-r", "/usr/share/sip-tester/g711a.pcap", pcap, "1-50").CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v: %s", err, out)
	}
	if g.RTPMin%100 != 0 || g.RTPMax != g.RTPMin+99 {
		t.Fatalf("RTP range %d-%d is not one block of 100", g.RTPMin, g.RTPMax)
	}
	portRE := fmt.Sprintf("%d[0-9][0-9]", g.RTPMin/100)
	dir := t.TempDir()
	files, err := filepath.Glob("../sipp/ng/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in test/sipp/ng: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("@GW_PORT@", portRE, "@PCAP@", pcap).Replace(string(b))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sippPair runs a uas scenario on uasPort and a uac scenario against
// Kamailio for calls calls; both must exit 0.
func sippPair(t *testing.T, dir string, kam, uacPort, uasPort int, uac, uas string, calls int, extra ...string) {
	t.Helper()
	sippPairArgs(t, dir, kam, uacPort, uasPort, uac, uas, calls, extra, []string{"-d", "1500"})
}

// sippPairArgs is sippPair with extra arguments for each side.
func sippPairArgs(t *testing.T, dir string, kam, uacPort, uasPort int, uac, uas string, calls int, extra, uasExtra []string) {
	t.Helper()
	sipp := requireTool(t, "sipp")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var uasOut, uacOut bytes.Buffer
	uasCmd := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(dir, uas), "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort),
		"-mp", strconv.Itoa(uasMediaPort), "-m", strconv.Itoa(calls), "-nostdin", "-timeout", "120s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, uas+".err"))
	uasCmd.Args = append(uasCmd.Args, uasExtra...)
	uasCmd.Stdout, uasCmd.Stderr = &uasOut, &uasOut
	if err := uasCmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var uasErr error
	wg.Add(1)
	go func() { defer wg.Done(); uasErr = uasCmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := append([]string{"-sf", filepath.Join(dir, uac), fmt.Sprintf("127.0.0.1:%d", kam), "-i", "127.0.0.1",
		"-p", strconv.Itoa(uacPort), "-mp", strconv.Itoa(uacMediaPort), "-m", strconv.Itoa(calls), "-nostdin",
		"-timeout", "120s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, uac+".err")}, extra...)
	uacCmd := exec.CommandContext(ctx, sipp, args...)
	uacCmd.Stdout, uacCmd.Stderr = &uacOut, &uacOut
	uacErr := uacCmd.Run()
	if uacErr != nil {
		// The callee would wait for calls that never come.
		time.AfterFunc(2*time.Second, func() { _ = uasCmd.Process.Kill() })
	}
	wg.Wait()
	if uacErr != nil || uasErr != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, uac+".err"))
		errs2, _ := os.ReadFile(filepath.Join(dir, uas+".err"))
		t.Fatalf("%s (%v) / %s (%v) with %d calls:\nuac errors: %s\nuas errors: %s\nuac: %s\nuas: %s", uac, uacErr, uas, uasErr, calls,
			tail(string(errs), 30), tail(string(errs2), 30), tail(uacOut.String(), 20), tail(uasOut.String(), 20))
	}
}

func ngCount(m map[string]float64, command, result string) float64 {
	return m[fmt.Sprintf(`mediagw_ng_requests_total{command=%q,result=%q}`, command, result)]
}

func ngErrors(m map[string]float64) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "mediagw_ng_requests_total{") && strings.Contains(k, `result="error"`) {
			n += v
		}
	}
	return n
}

func TestKamailioCallsThroughNG(t *testing.T) {
	requireTool(t, "kamailio")
	requireTool(t, "sipp")
	g, ng, sig := startNGGateway(t)
	dir := ngScenarios(t, g)
	kamPort, uacPort, uasPort := sig+65, sig+70, sig+71
	startKamailio(t, kamPort, fmt.Sprintf("udp:127.0.0.1:%d", ng), uasPort)
	start := g.Metrics(t)

	// 200 calls with RTP both ways: 100 put on hold and hung up by the
	// caller, 100 hung up by the callee. At most 12 at once: the gateway's
	// block has 50 port pairs and each call takes two.
	const calls = 100
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_hold_bye.xml", "uas_hold.xml", calls, "-r", "20", "-l", "12")
	g.WaitGaugesBack(t, start) // the caller's BYEs released every bridge and port
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_wait_bye.xml", "uas_bye.xml", calls, "-r", "20", "-l", "12")
	g.WaitGaugesBack(t, start) // and the callee's
	m := g.Metrics(t)
	if n := ngCount(m, "offer", "ok") - ngCount(start, "offer", "ok"); n != 3*calls {
		t.Errorf("offers ok %v, want %d (200 calls + 100 hold re-INVITEs)", n, 3*calls)
	}
	if n := ngCount(m, "answer", "ok") - ngCount(start, "answer", "ok"); n < 3*calls {
		t.Errorf("answers ok %v, want at least %d", n, 3*calls)
	}
	if n := ngCount(m, "delete", "ok") - ngCount(start, "delete", "ok"); n < 2*calls {
		t.Errorf("deletes ok %v, want at least %d (one BYE per call)", n, 2*calls)
	}
	if n := ngErrors(m) - ngErrors(start); n != 0 {
		t.Errorf("%v ng commands answered with an error", n)
	}
	// 50 packets each way per call: mediagw received and relayed them.
	in := m[`mediagw_rtp_packets_total{dir="in"}`] - start[`mediagw_rtp_packets_total{dir="in"}`]
	out := m[`mediagw_rtp_packets_total{dir="out"}`] - start[`mediagw_rtp_packets_total{dir="out"}`]
	want := float64(2 * calls * 2 * 50)
	t.Logf("RTP through mediagw: %v in, %v out (played %v)", in, out, want)
	if in < 0.95*want || out < 0.95*want {
		t.Errorf("RTP through mediagw: %v in, %v out; want at least 95%% of %v each way", in, out, want)
	}

	if a := m[`mediagw_ng_calls_active`]; a != 0 {
		t.Errorf("ng still holds %v calls", a)
	}
}

// A CANCEL while ringing and a 486 from the callee release what the offer took.
func TestKamailioCancelAndBusyThroughNG(t *testing.T) {
	requireTool(t, "kamailio")
	requireTool(t, "sipp")
	g, ng, sig := startNGGateway(t)
	dir := ngScenarios(t, g)
	kamPort, uacPort, uasPort := sig+65, sig+70, sig+71
	startKamailio(t, kamPort, fmt.Sprintf("udp:127.0.0.1:%d", ng), uasPort)
	start := g.Metrics(t)
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_cancel.xml", "uas_ring.xml", 10, "-r", "10")
	g.WaitGaugesBack(t, start)
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_busy.xml", "uas_busy.xml", 10, "-r", "10")
	g.WaitGaugesBack(t, start)
	m := g.Metrics(t)
	if n := ngCount(m, "offer", "ok") - ngCount(start, "offer", "ok"); n != 20 {
		t.Errorf("offers for the CANCEL and 486 calls: %v, want 20", n)
	}
	if n := ngCount(m, "delete", "ok") - ngCount(start, "delete", "ok"); n < 20 {
		t.Errorf("deletes %v, want at least 20", n)
	}
	if n := ngErrors(m) - ngErrors(start); n != 0 {
		t.Errorf("%v ng commands answered with an error", n)
	}
	if a := m[`mediagw_ng_calls_active`]; a != 0 {
		t.Errorf("ng still holds %v calls", a)
	}
}

// kill ends a gateway at once (SIGKILL), as a crash would.
func (g *Gateway) kill() {
	g.stopOnce.Do(func() {
		_ = g.cmd.Process.Kill()
		<-g.exited
	})
}

// Two gateways in Kamailio's rtpengine set, weights 2 and 1: calls spread
// by the weights, every command of a call reaches the instance that took
// its offer, and with one instance killed the other takes every new call.
func TestKamailioWeightedSetAndFailover(t *testing.T) {
	requireTool(t, "kamailio")
	requireTool(t, "sipp")
	g1, ng1, sig := startNGGateway(t)
	g2, ng2, _ := startNGGateway(t)
	dir := ngScenarios2(t, g1, g2)
	kamPort, uacPort, uasPort := sig+65, sig+70, sig+71
	startKamailio(t, kamPort, fmt.Sprintf("udp:127.0.0.1:%d=2 udp:127.0.0.1:%d=1", ng1, ng2), uasPort)
	s1, s2 := g1.Metrics(t), g2.Metrics(t)

	const calls = 90
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_hold_bye.xml", "uas_hold.xml", calls, "-r", "20", "-l", "12")
	g1.WaitGaugesBack(t, s1)
	g2.WaitGaugesBack(t, s2)
	m1, m2 := g1.Metrics(t), g2.Metrics(t)
	var offers [2]float64
	for i, p := range [][2]map[string]float64{{s1, m1}, {s2, m2}} {
		start, now := p[0], p[1]
		off := ngCount(now, "offer", "ok") - ngCount(start, "offer", "ok")
		ans := ngCount(now, "answer", "ok") - ngCount(start, "answer", "ok")
		del := ngCount(now, "delete", "ok") - ngCount(start, "delete", "ok")
		offers[i] = off
		// Each call is an offer, a hold re-offer, two answers and a delete:
		// a command that strayed to the other instance breaks the ratios
		// (or is an error there: an answer for an unknown call).
		if off != 2*del || ans < off {
			t.Errorf("instance %d: %v offers, %v answers, %v deletes: a call's commands were split between instances", i+1, off, ans, del)
		}
		if n := ngErrors(now) - ngErrors(start); n != 0 {
			t.Errorf("instance %d answered %v commands with an error", i+1, n)
		}
	}
	if offers[0]+offers[1] != 2*calls {
		t.Errorf("offers %v + %v, want %d", offers[0], offers[1], 2*calls)
	}
	share := offers[0] / (offers[0] + offers[1])
	t.Logf("weights 2:1: instance 1 took %.0f%% of %d calls", 100*share, calls)
	if share < 0.5 || share > 0.82 {
		t.Errorf("instance 1 (weight 2) took %.0f%% of the calls, want about 67%%", 100*share)
	}

	// Instance 2 drained by its operator: it answers new offers "load
	// limit", Kamailio sets those calls up on instance 1, none fails.
	drain := func(g *Gateway, on bool) {
		resp, err := http.Post(g.HTTP+"/v1/drain", "application/json", strings.NewReader(fmt.Sprintf(`{"Drain": %v}`, on)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("drain %v: HTTP %d", on, resp.StatusCode)
		}
	}
	drain(g2, true)
	d1, d2 := g1.Metrics(t), g2.Metrics(t)
	const drained = 30
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_hold_bye.xml", "uas_hold.xml", drained, "-r", "10", "-l", "12")
	g1.WaitGaugesBack(t, s1)
	e1, e2 := g1.Metrics(t), g2.Metrics(t)
	if n := ngCount(e1, "delete", "ok") - ngCount(d1, "delete", "ok"); n != drained {
		t.Errorf("instance 1 deleted %v calls while instance 2 drained, want all %d", n, drained)
	}
	if n := ngCount(e2, "offer", "ok") - ngCount(d2, "offer", "ok"); n != 0 {
		t.Errorf("drained instance 2 took %v offers", n)
	}
	refused := ngCount(e2, "offer", "load limit") - ngCount(d2, "offer", "load limit")
	t.Logf("drained instance 2 answered %v offers with load limit", refused)
	if refused == 0 {
		t.Error("no offer reached the drained instance: the drain was not exercised")
	}
	drain(g2, false)

	// Instance 2 dies: Kamailio's failover sends new calls to instance 1
	// and none of them fails.
	g2.kill()
	before := g1.Metrics(t)
	const after = 30
	sippPair(t, dir, kamPort, uacPort, uasPort, "uac_hold_bye.xml", "uas_hold.xml", after, "-r", "10", "-l", "12")
	g1.WaitGaugesBack(t, s1)
	now := g1.Metrics(t)
	if n := ngCount(now, "delete", "ok") - ngCount(before, "delete", "ok"); n < after {
		t.Errorf("instance 1 deleted %v calls after instance 2 died, want all %d", n, after)
	}
}

// ngScenarios2 renders the scenarios for two gateways: @GW_PORT@ matches
// either one's RTP ports.
func ngScenarios2(t *testing.T, g1, g2 *Gateway) string {
	t.Helper()
	dir := ngScenarios(t, g1)
	re1 := fmt.Sprintf("%d[0-9][0-9]", g1.RTPMin/100)
	re2 := fmt.Sprintf("%d[0-9][0-9]", g2.RTPMin/100)
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "m=audio "+re1+" ", "m=audio ("+re1+"|"+re2+") ")
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A release by another front (the HTTP API) of a call Kamailio set up
// drops the ng call: both legs go at once, and the BYE that follows is a
// delete of an unknown call (result ok, with a warning), not an error.
func TestKamailioCallReleasedOverHTTP(t *testing.T) {
	requireTool(t, "kamailio")
	requireTool(t, "sipp")
	g, ng, sig := startNGGateway(t)
	dir := ngScenarios(t, g)
	kamPort, uacPort, uasPort := sig+65, sig+70, sig+71
	startKamailio(t, kamPort, fmt.Sprintf("udp:127.0.0.1:%d", ng), uasPort)
	start := g.Metrics(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The callee hangs up 8 s after answering.
		sippPairArgs(t, dir, kamPort, uacPort, uasPort, "uac_wait_bye.xml", "uas_bye.xml", 1, nil, []string{"-d", "8000"})
	}()
	var conn string
	deadline := time.Now().Add(20 * time.Second)
	for conn == "" {
		if time.Now().After(deadline) {
			t.Fatal("the call's connections never appeared")
		}
		resp, err := http.Get(g.HTTP + "/v1/connections")
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Connections []struct{ ConnectionId, Owner, ConferenceId, MediaTxPort string }
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Answered: both legs bridged and both remotes known.
		if len(list.Connections) == 2 && list.Connections[0].ConferenceId != "" &&
			list.Connections[0].MediaTxPort != "" && list.Connections[1].MediaTxPort != "" {
			if list.Connections[0].Owner != "ng" {
				t.Fatalf("connection owner %q, want ng", list.Connections[0].Owner)
			}
			conn = list.Connections[0].ConnectionId
		}
		time.Sleep(50 * time.Millisecond)
	}
	released := time.Now()
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": conn})
	g.WaitGaugesBack(t, start) // the other leg and the bridge too
	if time.Since(released) > 6*time.Second {
		t.Fatal("the legs went only with the BYE, not with the HTTP release")
	}
	if a := g.Metrics(t)[`mediagw_ng_calls_active`]; a != 0 {
		t.Errorf("ng still holds %v calls after the HTTP release", a)
	}
	<-done
	m := g.Metrics(t)
	if n := ngCount(m, "delete", "ok") - ngCount(start, "delete", "ok"); n < 1 {
		t.Errorf("the BYE's delete: %v ok answers, want 1 (a warning, not an error)", n)
	}
	if n := ngErrors(m) - ngErrors(start); n != 0 {
		t.Errorf("%v ng commands answered with an error", n)
	}
}

// ng calls survive a gateway crash: SIPp calls through Kamailio are up when
// the gateway is killed (SIGKILL) and started again on its state file;
// the callees' BYEs after the restart reach the restored calls through
// Kamailio's delete, every call completes on both sides, no ng command is
// refused, and the gauges return to where they began (a delete that did
// not find its call would leave its ports held).
func TestKamailioCallsSurviveRestart(t *testing.T) {
	requireTool(t, "kamailio")
	sipp := requireTool(t, "sipp")
	ng := ngPortBase + ngStarts%10
	ngStarts++
	g := StartGateway(t, GatewayOptions{
		ExtraYAML: fmt.Sprintf("ng:\n  listen: \"udp://127.0.0.1:%d\"\n  delete_delay: 0s\n", ng),
		State:     fmt.Sprintf("{store: file, path: %q}", filepath.Join(t.TempDir(), "gw.state")),
	})
	_, p, _ := net.SplitHostPort(g.SIP)
	sig, _ := strconv.Atoi(p)
	sig -= 60
	dir := ngScenarios(t, g)
	kamPort, uacPort, uasPort := sig+65, sig+70, sig+71
	startKamailio(t, kamPort, fmt.Sprintf("udp:127.0.0.1:%d", ng), uasPort)
	start := g.Metrics(t)

	const calls = 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var uasOut, uacOut bytes.Buffer
	uas := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(dir, "uas_bye.xml"), "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort),
		"-mp", strconv.Itoa(uasMediaPort), "-m", strconv.Itoa(calls), "-nostdin", "-timeout", "90s", "-timeout_error", "-d", "5000",
		"-trace_err", "-error_file", filepath.Join(dir, "uas_restart.err"))
	uas.Stdout, uas.Stderr = &uasOut, &uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	uac := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(dir, "uac_wait_bye.xml"), fmt.Sprintf("127.0.0.1:%d", kamPort),
		"-i", "127.0.0.1", "-p", strconv.Itoa(uacPort), "-mp", strconv.Itoa(uacMediaPort), "-m", strconv.Itoa(calls), "-r", "10",
		"-nostdin", "-timeout", "90s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, "uac_restart.err"))
	uac.Stdout, uac.Stderr = &uacOut, &uacOut
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for g.Metrics(t)["mediagw_ng_calls_active"] < calls {
		if time.Now().After(deadline) {
			t.Fatalf("the %d calls did not come up", calls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.WaitStateWritten(t)
	g.Kill()
	g.Restart(t)
	if a := g.Metrics(t)["mediagw_ng_calls_active"]; a != calls {
		t.Fatalf("%v ng calls after the restart, want %d", a, calls)
	}
	uacErr, uasErr := uac.Wait(), uas.Wait()
	if uacErr != nil || uasErr != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "uac_restart.err"))
		errs2, _ := os.ReadFile(filepath.Join(dir, "uas_restart.err"))
		t.Fatalf("SIPp across the restart: uac %v, uas %v\nuac errors: %s\nuas errors: %s\nuac: %s\nuas: %s", uacErr, uasErr,
			tail(string(errs), 20), tail(string(errs2), 20), tail(uacOut.String(), 15), tail(uasOut.String(), 15))
	}
	m := g.Metrics(t)
	if n := ngCount(m, "delete", "ok"); n < calls {
		t.Errorf("deletes ok after the restart: %v, want at least %d", n, calls)
	}
	if n := ngErrors(m); n != 0 {
		t.Errorf("%v ng commands answered with an error after the restart", n)
	}
	g.WaitGaugesBack(t, start)
}
