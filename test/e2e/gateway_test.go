// Package e2e drives the real gateway binary over loopback: HTTP control,
// MGCP and SIP signalling, and tone-tagged RTP peers that check who hears
// whom. Ports: RTP 34000-34999, signalling 36000-36999 (docs/contracts.md).
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	builds   [2]build // with the race detector, without
	startSeq int      // each start in this process gets its own port block
)

type build struct {
	once sync.Once
	path string
	err  error
}

// gatewayBinary builds ./cmd/gateway once per test process, with the race
// detector unless plain (memory figures: the race runtime's own memory is
// several times the program's and is never given back).
func gatewayBinary(t testing.TB, plain bool) string {
	t.Helper()
	b := &builds[0]
	args := []string{"build", "-race"}
	if plain {
		b, args = &builds[1], []string{"build"}
	}
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "mediagw-e2e-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "gateway")
		cmd := exec.Command("go", append(args, "-o", b.path, "github.com/mediagw/mediagw/cmd/gateway")...)
		cmd.Stderr = os.Stderr
		b.err = cmd.Run()
	})
	if b.err != nil {
		t.Fatalf("building the gateway: %v", b.err)
	}
	return b.path
}

// Gateway is a running gateway process.
type Gateway struct {
	t        testing.TB
	cmd      *exec.Cmd
	HTTP     string // base URL
	MGCP     string // host:port
	SIP      string // host:port (udp and tcp)
	SIPTLS   string // host:port of the tls:// listener (GatewayOptions.TLS)
	RTPMin   int
	RTPMax   int
	logs     *lockedBuffer
	exited   chan struct{}
	exitErr  error
	stopOnce *sync.Once
	bin      string // what launch runs, with -config cfgPath
	cfgPath  string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// GatewayOptions tune a start; zero values are sensible for tests.
type GatewayOptions struct {
	NotifiedEntity string // mgcp.notified_entity
	MediaTimeout   string // rtp.media_timeout, default "0" (off)
	ExtraYAML      string // appended to the config file
	SIPYAML        string // more keys of the sip section, each line indented two spaces
	TLS            bool   // also listen on tls:// (SIPYAML must give sip.tls)
	Plain          bool   // a binary without the race detector (for memory figures)
	State          string // the state section, e.g. "{store: file, path: /tmp/x}"; default {store: none}
}

// StartGateway runs the binary with a test config on its own ports and
// waits until /healthz answers. It is stopped (SIGTERM) at cleanup and must
// exit 0.
func StartGateway(t testing.TB, opt GatewayOptions) *Gateway {
	t.Helper()
	bin := gatewayBinary(t, opt.Plain)
	// Block 0 (36000-36099, RTP 34000-34099) is test/sipp/run.sh's. Take the
	// next block whose signalling ports are free (another run may hold one).
	var block, sig int
	for try := 0; ; try++ {
		block = 1 + startSeq%8
		startSeq++
		sig = 36000 + block*100
		if signallingFree(sig) || try == 16 {
			break
		}
	}
	rtpMin := 34000 + block*100
	g := &Gateway{
		t:      t,
		HTTP:   fmt.Sprintf("http://127.0.0.1:%d", sig+80),
		MGCP:   fmt.Sprintf("127.0.0.1:%d", sig+29),
		SIP:    fmt.Sprintf("127.0.0.1:%d", sig+60),
		RTPMin: rtpMin,
		RTPMax: rtpMin + 99,
		logs:   &lockedBuffer{},
	}
	if opt.SIPYAML != "" && !strings.HasSuffix(opt.SIPYAML, "\n") {
		opt.SIPYAML += "\n"
	}
	if opt.MediaTimeout == "" {
		opt.MediaTimeout = "0s"
	}
	if opt.State == "" {
		opt.State = "{store: none}"
	}
	listen := fmt.Sprintf(`"udp://%[1]s", "tcp://%[1]s"`, g.SIP)
	if opt.TLS {
		g.SIPTLS = fmt.Sprintf("127.0.0.1:%d", sig+61)
		listen += fmt.Sprintf(`, "tls://%s"`, g.SIPTLS)
	}
	cfg := fmt.Sprintf(`log: {level: debug, format: text}
sip:
  listen: [%[10]s]
  external_host: "127.0.0.1"
%[9]smgcp:
  listen: "udp://%[2]s"
  domain: "mgw"
  call_agents: ["127.0.0.0/8"]
  notified_entity: %[3]q
rtp:
  bind: "127.0.0.1"
  external_ip: "127.0.0.1"
  port_min: %[4]d
  port_max: %[5]d
  media_timeout: %[6]s
state: %[11]s
http:
  listen: "%[7]s"
%[8]s`, g.SIP, g.MGCP, opt.NotifiedEntity, g.RTPMin, g.RTPMax, opt.MediaTimeout,
		strings.TrimPrefix(g.HTTP, "http://"), opt.ExtraYAML, opt.SIPYAML, listen, opt.State)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g.bin, g.cfgPath = bin, path
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("gateway log:\n%s", tail(g.logs.String(), 60))
		}
	})
	g.launch(t)
	return g
}

// launch starts the binary on the gateway's config and waits until
// /healthz answers.
func (g *Gateway) launch(t testing.TB) {
	t.Helper()
	g.stopOnce = &sync.Once{}
	g.exited = make(chan struct{})
	g.cmd = exec.Command(g.bin, "-config", g.cfgPath)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited := g.cmd, g.exited
	go func() {
		g.exitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(g.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("gateway exited during start: %v\n%s", g.exitErr, g.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not healthy after 20s:\n%s", g.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart starts the gateway again on the same config (and ports) after
// Kill or Stop.
func (g *Gateway) Restart(t testing.TB) {
	t.Helper()
	<-g.exited
	g.launch(t)
}

// signallingFree reports whether a block's HTTP, SIP and MGCP ports bind.
func signallingFree(sig int) bool {
	for _, p := range []struct {
		network string
		port    int
	}{{"tcp", sig + 80}, {"tcp", sig + 60}, {"udp", sig + 60}, {"udp", sig + 29}} {
		addr := fmt.Sprintf("127.0.0.1:%d", p.port)
		if p.network == "tcp" {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return false
			}
			ln.Close()
		} else {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			pc.Close()
		}
	}
	return true
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM and checks the gateway drains (or, with a state
// store, keeps its calls) and exits 0 within 15 s.
func (g *Gateway) Stop() { g.stopWith(syscall.SIGTERM) }

// StopReleasing sends SIGUSR1: the gateway releases every call, even with
// a state store, and must exit 0 within 15 s.
func (g *Gateway) StopReleasing() { g.stopWith(syscall.SIGUSR1) }

func (g *Gateway) stopWith(sig syscall.Signal) {
	g.stopOnce.Do(func() {
		_ = g.cmd.Process.Signal(sig)
		select {
		case <-g.exited:
			if g.exitErr != nil {
				g.t.Errorf("gateway exit: %v", g.exitErr)
			}
		case <-time.After(15 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.exited
			g.t.Errorf("gateway did not exit within 15s of %v", sig)
		}
		if strings.Contains(g.logs.String(), "DATA RACE") {
			g.t.Errorf("the race detector fired in the gateway")
		}
	})
}

// Kill ends the gateway with SIGKILL (a crash): no drain, nothing flushed.
func (g *Gateway) Kill() {
	g.stopOnce.Do(func() {
		_ = g.cmd.Process.Kill()
		<-g.exited
	})
}

// WaitStateWritten waits until the gateway's state store has committed
// every update it accepted (mediagw_state_unwritten is 0), so that a Kill
// after it tests what a crash keeps, not the group commit's last window
// (store.Options.GroupDelay), which a crash loses by design.
func (g *Gateway) WaitStateWritten(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := g.Metrics(t)
		u, ok := m["mediagw_state_unwritten"]
		if !ok {
			t.Fatal("no mediagw_state_unwritten: the gateway keeps no state")
		}
		if u == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v state updates still unwritten after 10s", u)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logs returns what the gateway has logged so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// Action posts a Media Control action and returns the answer's fields.
func (g *Gateway) Action(t testing.TB, name string, params map[string]any) map[string]string {
	t.Helper()
	body, _ := json.Marshal(params)
	resp, err := http.Post(g.HTTP+"/v1/actions/"+name, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: decoding answer: %v", name, err)
	}
	return out
}

// MustAction is Action that fails the test unless ResultCode is "0".
func (g *Gateway) MustAction(t testing.TB, name string, params map[string]any) map[string]string {
	t.Helper()
	out := g.Action(t, name, params)
	if out["ResultCode"] != "0" {
		t.Fatalf("%s(%v): %v", name, params, out)
	}
	return out
}

var metricLine = regexp.MustCompile(`^(mediagw_[a-z_]+(?:\{[^}]*\})?) ([0-9.eE+-]+)$`)

// Metrics scrapes /metrics into series → value (mediagw_ series only).
func (g *Gateway) Metrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get(g.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out
}

// gauges are the series that must return to their starting values once
// everything a test made is released.
var gauges = []string{
	"mediagw_connections_active",
	"mediagw_conferences_active",
	"mediagw_bridges_active",
	`mediagw_resources_in_use{pool="rtp"}`,
	`mediagw_resources_in_use{pool="enhanced_rtp"}`,
	`mediagw_resources_in_use{pool="conference"}`,
	"mediagw_rtp_ports_free",
}

// WaitGaugesBack polls /metrics until every gauge equals its value in start.
func (g *Gateway) WaitGaugesBack(t testing.TB, start map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := g.Metrics(t)
		var diff []string
		for _, k := range gauges {
			if now[k] != start[k] {
				diff = append(diff, fmt.Sprintf("%s=%v (start %v)", k, now[k], start[k]))
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics not back to their starting values: %s", strings.Join(diff, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
