package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// metricRef finds the series names a PromQL expression reads: ours, and the
// Go and process collectors' (up is made by Prometheus itself).
var metricRef = regexp.MustCompile(`\b(?:mediagw|process|go)_[a-z0-9_]+\b`)

// TestDeployQueriesUseExposedMetrics checks that every metric the Grafana
// dashboard and the Prometheus alerts in deploy/ query is one that /metrics
// exposes, after the traffic that makes each labelled series appear.
func TestDeployQueriesUseExposedMetrics(t *testing.T) {
	var queries []string
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	data, err := os.ReadFile("../../deploy/grafana/mediagw.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/mediagw.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if s, ok := v.Query.(string); ok {
			queries = append(queries, s)
		}
	}
	alerts, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(alerts), "\n") {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") {
			queries = append(queries, l) // expr: lines and their continuations
		}
	}

	g := StartGateway(t, GatewayOptions{})
	// Traffic that makes the labelled series exist: an HTTP conference
	// released whole (actions, DeleteConnection), an MGCP command.
	peerA, peerB := NewTonePeer(t, 400, 0), NewTonePeer(t, 600, 0)
	a := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": peerA.Port(), "MediaTxCodec": "PCMU"})
	b := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": peerB.Port(), "MediaTxCodec": "PCMU"})
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": a["ConnectionId"], "ConferenceId": "deploy"})
	g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": b["ConnectionId"], "ConferenceId": "deploy"})
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": "deploy"})
	ca := newCallAgent(t)
	ca.attach(g)
	if code, _, _ := ca.do("AUEP {tid} rtpbridge/*@mgw MGCP 1.0\r\n"); code != 200 {
		t.Fatalf("AUEP answered %d", code)
	}

	sipOptions(t, g.SIP)

	// A response is counted just after it is written: poll until the
	// series appear (or the deadline shows they never do).
	var missing []string
	var body []byte
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := http.Get(g.HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(res.Body)
		res.Body.Close()
		exposed := map[string]bool{}
		for _, line := range strings.Split(string(body), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			name := line
			if i := strings.IndexAny(line, "{ "); i > 0 {
				name = line[:i]
			}
			exposed[name] = true
		}
		missing = missing[:0]
		clear(seen)
		for _, q := range queries {
			for _, name := range metricRef.FindAllString(q, -1) {
				if !exposed[name] && !seen[name] {
					missing = append(missing, name)
				}
				seen[name] = true
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 10 {
		t.Fatalf("only %d metric names found in the deploy queries: the parse is broken", len(seen))
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("deploy/ queries metrics that /metrics does not expose: %v\n%s", missing, body)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze on deploy/systemd: the unit
// must verify without a warning, and its sandboxing must rate an exposure of
// 2.5 or better (systemd-analyze security, 0 = locked down, 10 = none).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("MEDIAGW_REQUIRE_PEERS") != "" {
			t.Fatal("systemd-analyze not found (Debian package systemd)")
		}
		t.Skip("systemd-analyze not found")
	}
	unit, err := os.ReadFile("../../deploy/systemd/mediagw.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart exists: point it at the binary we build.
	bin := gatewayBinary(t, false)
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/mediagw", bin)
	if text == string(unit) {
		t.Fatal("the unit does not run /usr/local/bin/mediagw")
	}
	path := filepath.Join(t.TempDir(), "mediagw.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=25", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure over 2.5 (%v)\n%s", err, out)
	}
	for _, want := range []string{"LimitNOFILE=", "User=mediagw", "NoNewPrivileges=yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

// sipOptions sends one OPTIONS over UDP and waits for its final answer.
func sipOptions(t testing.TB, target string) {
	t.Helper()
	conn, err := net.Dial("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg := "OPTIONS sip:" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-deploy-1;rport\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:probe@" + local + ">;tag=deploy\r\nTo: <sip:" + target + ">\r\n" +
		"Call-ID: deploy-options@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer to OPTIONS: %v", err)
		}
		if strings.HasPrefix(string(buf[:n]), "SIP/2.0 2") {
			return
		}
	}
}
