package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

var updateGolden = flag.Bool("update", false, "rewrite test/e2e/testdata/ctl/*.golden from the live output")

// ctlRun runs `gateway ctl ARGS` against g and returns its output and exit status.
func ctlRun(t *testing.T, g *Gateway, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(gatewayBinary(t, false), append([]string{"ctl", "-addr", g.HTTP}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

var (
	goldenPort = regexp.MustCompile(`\b34[1-8]\d\d\b`) // the gateway's RTP ports (block 1-8)
	goldenTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z`)
)

// golden compares out (RTP ports and times masked) with testdata/ctl/NAME.golden.
func golden(t *testing.T, name, out string) {
	t.Helper()
	out = goldenTime.ReplaceAllString(goldenPort.ReplaceAllString(out, "PORT_"), "TIME____________________")
	path := filepath.Join("testdata", "ctl", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("gateway ctl %s: output differs from %s\n--- got\n%s--- want\n%s", name, path, out, want)
	}
}

func TestCtlGolden(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	var ids []string
	for i := 0; i < 3; i++ {
		p := map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": strconv.Itoa(4000 + 2*i), "MediaTxCodec": "PCMU"}
		if i == 0 {
			// Alone in its conference until the second joins, a member is
			// sent the mixer's silence; inactive until then, so the
			// packet counts in the goldens do not depend on the timing.
			p["Mode"] = "inactive"
		}
		r := g.MustAction(t, "CreateConnection", p)
		ids = append(ids, r["ConnectionId"])
	}
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "ops"})
	g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": ids[1], "ConferenceId": "ops"})
	g.MustAction(t, "ModifyConnection", map[string]any{"ConnectionId": ids[0], "Mode": "sendrecv"})

	cases := []struct {
		name string
		args []string
		code int
	}{
		{"list", []string{"list"}, 0},
		{"list-conferences-json", []string{"-o", "json", "list", "conferences"}, 0},
		{"show-connection", []string{"show", ids[1]}, 0},
		{"show-conference", []string{"show", "ops"}, 0},
		{"show-unknown-connection", []string{"show", "999"}, 23},
		{"show-unknown-conference", []string{"show", "nosuch"}, 24},
		{"mute", []string{"mute", "ops", ids[1]}, 0},
		{"list-after-mute", []string{"list", "conferences"}, 0},
		{"mute-not-member", []string{"mute", "ops", ids[2]}, 24},
		{"unmute-json", []string{"-o", "json", "mute", "ops", ids[1], "off"}, 0},
		{"delete-unknown", []string{"delete", "999"}, 23},
		{"delete-bad-id", []string{"delete", "x1"}, 22},
		{"delete-member", []string{"delete", "-conference", "ops", ids[1]}, 0},
		{"delete-conference", []string{"delete", "-conference", "ops"}, 0},
		{"delete-connection", []string{"delete", ids[1]}, 0},
		{"list-after-delete", []string{"list"}, 0},
		{"usage-unknown-command", []string{"frobnicate"}, 2},
		{"usage-bad-output", []string{"-o", "yaml", "list"}, 2},
		{"usage-delete-nothing", []string{"delete"}, 2},
	}
	for _, c := range cases {
		out, code := ctlRun(t, g, nil, c.args...)
		if code != c.code {
			t.Errorf("gateway ctl %v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		golden(t, c.name, out)
	}

	// stats: the gauges the operator reads, as JSON for a script.
	out, code := ctlRun(t, g, nil, "-o", "json", "stats")
	var series map[string]float64
	if err := json.Unmarshal([]byte(out), &series); code != 0 || err != nil {
		t.Fatalf("stats -o json: exit %d, %v\n%s", code, err, out)
	}
	if series["mediagw_connections_active"] != 1 || series["mediagw_conferences_active"] != 0 {
		t.Errorf("stats: connections %v conferences %v, want 1 and 0", series["mediagw_connections_active"], series["mediagw_conferences_active"])
	}
	if _, ok := series[`mediagw_resources_in_use{pool="rtp"}`]; !ok {
		t.Errorf("stats lacks the resource pools: %v", series)
	}
	out, _ = ctlRun(t, g, nil, "stats")
	if !regexp.MustCompile(`(?m)^mediagw_connections_active\s+1$`).MatchString(out) {
		t.Errorf("stats table lacks mediagw_connections_active 1:\n%s", out)
	}

	// drain: new connections refused (ResultCode 5), the one in progress
	// stays, /healthz 503; drain off resumes.
	out, code = ctlRun(t, g, nil, "drain")
	if code != 0 {
		t.Fatalf("drain: exit %d\n%s", code, out)
	}
	golden(t, "drain", out)
	if r := g.Action(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": "4010"}); r["ResultCode"] != "5" {
		t.Errorf("CreateConnection while draining: %v, want ResultCode 5", r)
	}
	if res, err := http.Get(g.HTTP + "/healthz"); err != nil || res.StatusCode != 503 {
		t.Errorf("healthz while draining: %v %v, want 503", res.Status, err)
	}
	if _, code := ctlRun(t, g, nil, "show", ids[2]); code != 0 {
		t.Errorf("the connection in progress is gone while draining")
	}
	out, code = ctlRun(t, g, nil, "drain", "off")
	if code != 0 {
		t.Fatalf("drain off: exit %d\n%s", code, out)
	}
	golden(t, "drain-off", out)
	r := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": "4010"})
	if out, code := ctlRun(t, g, nil, "delete", r["ConnectionId"]); code != 0 {
		t.Errorf("delete after drain off: exit %d\n%s", code, out)
	}
	if out, code := ctlRun(t, g, nil, "delete", ids[2]); code != 0 {
		t.Errorf("delete: exit %d\n%s", code, out)
	}
}

func TestCtlToken(t *testing.T) {
	g := StartGateway(t, GatewayOptions{ExtraYAML: "  token: \"s3cret\"\n"})
	out, code := ctlRun(t, g, nil, "list")
	if code != 1 || !strings.Contains(out, "401") {
		t.Errorf("without the token: exit %d, want 1 and a 401\n%s", code, out)
	}
	if out, code := ctlRun(t, g, nil, "-token", "s3cret", "list"); code != 0 {
		t.Errorf("-token: exit %d\n%s", code, out)
	}
	if out, code := ctlRun(t, g, []string{"MEDIAGW_TOKEN=s3cret"}, "list"); code != 0 {
		t.Errorf("MEDIAGW_TOKEN: exit %d\n%s", code, out)
	}
	if out, code := ctlRun(t, g, []string{"MEDIAGW_TOKEN=wrong"}, "delete", "1"); code != 1 {
		t.Errorf("wrong token: exit %d, want 1\n%s", code, out)
	}
}

// gateway ctl events follows the live stream: a connection released over
// the API shows up (JSON form checked field by field; the table form has
// a clock in it).
func TestCtlEvents(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	r := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": "4010"})
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, code := ctlRun(t, g, nil, "-o", "json", "events", "-connection", r["ConnectionId"], "-n", "1")
		done <- result{out, code}
	}()
	// The stream is subscribed once ctl prints nothing yet; release until it is seen.
	time.Sleep(500 * time.Millisecond)
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": r["ConnectionId"]})
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("gateway ctl events saw nothing")
	}
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.out)
	}
	var ev struct {
		Event string            `json:"event"`
		Data  map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.out)), &ev); err != nil {
		t.Fatalf("%v: %q", err, res.out)
	}
	if ev.Event != "ConnectionReleased" || ev.Data["ConnectionId"] != r["ConnectionId"] || ev.Data["By"] != "http" {
		t.Fatalf("event %+v", ev)
	}
}

// gateway ctl play, record, stop and digits against a live gateway: the
// answers (golden), their exit codes, and the recording on disk.
func TestCtlMedia(t *testing.T) {
	dir, recDir := t.TempDir(), t.TempDir()
	prompt := make([]int16, 8000*20) // 20 s: still playing when the second play comes
	audio.NewTone(1000, 0, -10, audio.Off).Read(prompt)
	if err := os.WriteFile(filepath.Join(dir, "hello.wav"), audio.EncodeWAV(prompt, audio.PCM16), 0o644); err != nil {
		t.Fatal(err)
	}
	g := StartGateway(t, GatewayOptions{ExtraYAML: "media:\n  dir: " + dir + "\n  record_dir: " + recDir + "\n"})
	var ids []string
	for i := 0; i < 2; i++ {
		r := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": strconv.Itoa(4100 + 2*i), "MediaTxCodec": "PCMU"})
		ids = append(ids, r["ConnectionId"])
	}
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "media"})
	g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": ids[1], "ConferenceId": "media"})
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"record-conference", []string{"record", "-file", "ctl.wav", "-encoding", "alaw", "conf:media"}, 0},
		{"play-conference", []string{"play", "conf:media", "hello.wav"}, 0},
		{"play-busy", []string{"play", "conf:media", "hello.wav"}, 14},
		{"play-missing", []string{"play", ids[0], "nosuch.wav"}, 30},
		{"play-escape", []string{"play", ids[0], "../etc/passwd"}, 27},
		{"digits", []string{"digits", ids[1], "12#"}, 0},
		{"stop-record", []string{"stop", "1"}, 0},
		{"stop-unknown", []string{"stop", "99"}, 27},
		{"usage-play", []string{"play", "conf:media"}, 2},
		{"usage-record", []string{"record"}, 2},
	}
	for _, c := range cases {
		out, code := ctlRun(t, g, nil, c.args...)
		if code != c.code {
			t.Errorf("gateway ctl %v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		golden(t, c.name, out)
	}
	time.Sleep(300 * time.Millisecond)
	b, err := os.ReadFile(filepath.Join(recDir, "ctl.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if pcm, enc, err := audio.ParseWAV(b); err != nil || enc != audio.Alaw || len(pcm) == 0 {
		t.Fatalf("ctl.wav: %d samples %v %v", len(pcm), enc, err)
	}
}
