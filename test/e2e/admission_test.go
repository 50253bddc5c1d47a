package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Admission (issue 10, findings 1 and 8) driven by the tools a caller and
// an attacker use: a Python UA that computes digest itself, SIPp with
// -au/-ap, and sipvicious (svmap, svwar, svcrack). 127.0.0.1 and 127.0.0.2
// are both on lo; each test trusts one of them and calls from the other.

const testPassword = "c0rrect-h0rse"

// usersFile writes a users file with alice and returns its path.
func usersFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("# test users\nalice:"+testPassword+"\nbob:other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sigBase is the first port of the gateway's signalling block (SIP is +60).
func sigBase(t *testing.T, g *Gateway) int {
	t.Helper()
	_, p, _ := strings.Cut(g.SIP, ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n - 60
}

func refused(m map[string]float64, reason string) float64 {
	return m[`mediagw_sip_refused_total{reason="`+reason+`"}`]
}

// run runs a tool with a deadline and returns its combined output and error.
func run(t *testing.T, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // sipvicious keeps its state under ~
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A Python UA at 127.0.0.2, with only 127.0.0.1 trusted: 403 without a
// users file; with one, 401 → authenticated INVITE (SHA-256 and MD5) →
// joined, wrong password 403, replay 403, expired nonce 401 stale=true;
// nothing allocated for any refused attempt (the script checks /metrics
// after each).
func TestPythonUAAdmission(t *testing.T) {
	py := requireTool(t, "python3")
	script, _ := filepath.Abs("../auth/digest_ua.py")

	g := StartGateway(t, GatewayOptions{SIPYAML: `  trusted: ["127.0.0.1/32"]`})
	out, err := run(t, time.Minute, py, script, "--gw", g.SIP, "--bind", "127.0.0.2", "--http", g.HTTP, "--mode", "nousers")
	t.Logf("digest_ua.py nousers:\n%s", out)
	if err != nil {
		t.Fatalf("digest_ua.py --mode nousers: %v", err)
	}
	if n := refused(g.Metrics(t), "untrusted"); n < 2 {
		t.Errorf("refused{untrusted} = %v, want ≥ 2", n)
	}

	users := usersFile(t)
	g2 := StartGateway(t, GatewayOptions{SIPYAML: fmt.Sprintf("  trusted: [\"127.0.0.1/32\"]\n  users_file: %q\n  nonce_ttl: 2s", users)})
	start := g2.Metrics(t)
	out, err = run(t, time.Minute, py, script, "--gw", g2.SIP, "--bind", "127.0.0.2", "--http", g2.HTTP, "--mode", "users",
		"--user", "alice", "--password", testPassword, "--nonce-ttl", "2")
	t.Logf("digest_ua.py users:\n%s", out)
	if err != nil {
		t.Fatalf("digest_ua.py --mode users: %v", err)
	}
	g2.WaitGaugesBack(t, start)
	end := g2.Metrics(t)
	if d := refused(end, "auth") - refused(start, "auth"); d < 4 { // 2 replays, wrong password, stale
		t.Errorf("refused{auth} moved by %v, want ≥ 4", d)
	}

	// A new users file, read on SIGHUP without a restart: carol can call.
	if err := os.WriteFile(users, []byte("carol:n3w-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g2.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g2.Logs(), "users file reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no reload logged after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err = run(t, time.Minute, py, script, "--gw", g2.SIP, "--bind", "127.0.0.2", "--http", g2.HTTP, "--mode", "users",
		"--user", "carol", "--password", "n3w-pass", "--nonce-ttl", "2")
	if err != nil {
		t.Fatalf("digest_ua.py as carol after SIGHUP: %v\n%s", err, out)
	}
}

// SIPp at 127.0.0.2 joins a conference with -au/-ap and an
// [authentication] scenario; with a wrong password every call fails and
// nothing is allocated.
func TestSIPpDigestAdmission(t *testing.T) {
	sipp := requireTool(t, "sipp")
	scenario, _ := filepath.Abs("../sipp/uac_auth.xml")
	// SIPp 3.6 answers only the first challenge and knows only MD5, so
	// this gateway offers MD5 first (sip.auth_algorithms).
	g := StartGateway(t, GatewayOptions{SIPYAML: fmt.Sprintf("  trusted: [\"127.0.0.1/32\"]\n  users_file: %q\n  auth_algorithms: [MD5, SHA-256]", usersFile(t))})
	start := g.Metrics(t)
	base := sigBase(t, g)
	common := []string{g.SIP, "-sf", scenario, "-s", "conf-sippauth", "-au", "alice", "-i", "127.0.0.2", "-mi", "127.0.0.2",
		"-nostdin", "-timeout", "60s", "-timeout_error", "-recv_timeout", "30000", "-d", "200"}

	out, err := run(t, 90*time.Second, sipp, append(common, "-ap", testPassword, "-m", "5", "-r", "5", "-l", "5",
		"-p", strconv.Itoa(base+41), "-mp", strconv.Itoa(base+50))...)
	if err != nil {
		t.Fatalf("SIPp with the right password: %v\n%s", err, tail(out, 30))
	}
	g.WaitGaugesBack(t, start)
	mid := g.Metrics(t)
	if calls := mid[`mediagw_sip_responses_total{code="200"}`] - start[`mediagw_sip_responses_total{code="200"}`]; calls < 10 {
		t.Errorf("%v 200s for 5 authenticated calls (INVITE and BYE each)", calls)
	}

	out, err = run(t, 90*time.Second, sipp, append(common, "-ap", "wrong", "-m", "2", "-r", "2",
		"-p", strconv.Itoa(base+42), "-mp", strconv.Itoa(base+54))...)
	if err == nil {
		t.Fatalf("SIPp with a wrong password succeeded:\n%s", tail(out, 30))
	}
	g.WaitGaugesBack(t, start)
	if d := refused(g.Metrics(t), "auth") - refused(mid, "auth"); d != 2 {
		t.Errorf("refused{auth} moved by %v for 2 calls with a wrong password, want 2", d)
	}
}

// svwarRow is one row of svwar's result table.
var svwarRow = regexp.MustCompile(`(?m)^\| (\S+)\s+\| (\S+)\s+\|$`)

// svwarFound is what svwar reported: extension → authentication column.
func svwarFound(out string) map[string]string {
	found := map[string]string{}
	for _, m := range svwarRow.FindAllStringSubmatch(out, -1) {
		if m[1] != "Extension" {
			found[m[1]] = m[2]
		}
	}
	return found
}

// dictionary writes n names: conf-<i> (routes that exist), echo, and names
// no route matches, shuffled.
func dictionary(t *testing.T, n int) string {
	t.Helper()
	words := []string{"echo"}
	for i := 0; len(words) < n; i++ {
		words = append(words, fmt.Sprintf("conf-%d", i), fmt.Sprintf("nosuch%d", i))
	}
	words = words[:n]
	rand.New(rand.NewSource(1)).Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	path := filepath.Join(t.TempDir(), "dict.txt")
	if err := os.WriteFile(path, []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sipvicious from an untrusted source (127.0.0.1; it cannot bind another:
// svwar 0.3.3 ignores -b) while SIPp calls from the trusted 127.0.0.2:
// svmap finds the gateway, svwar over 1,000 names cannot tell routes that
// exist from those that do not, svcrack with a wrong dictionary finds
// nothing; the SIPp load has no failed call, the scan allocates nothing and
// every refusal is counted.
func TestSipviciousCannotEnumerate(t *testing.T) {
	sipp := requireTool(t, "sipp")
	svmap := requireTool(t, "svmap")
	svwar := requireTool(t, "svwar")
	svcrack := requireTool(t, "svcrack")

	t0 := time.Now()
	phase := func(what string) { t.Logf("%s done after %v", what, time.Since(t0).Round(time.Millisecond)) }
	// Control: against a gateway that trusts the scanner, svwar lists the
	// routes (so the parsing below can see a leak).
	open := StartGateway(t, GatewayOptions{})
	host, port, _ := strings.Cut(open.SIP, ":")
	out, err := run(t, time.Minute, svwar, "-t", "0.01", "-p", port, "-m", "INVITE", "-d", dictionary(t, 12), host)
	found := svwarFound(out)
	if err != nil || found["echo"] != "noauth" || len(found) < 3 {
		t.Fatalf("control: svwar against a trusting gateway found %v (err %v)\n%s", found, err, tail(out, 20))
	}
	for ext := range found {
		if strings.HasPrefix(ext, "nosuch") {
			t.Fatalf("control: svwar reports %s, which no route matches", ext)
		}
	}
	open.Stop()
	phase("control svwar")

	// MD5 first: svcrack 0.3.3 reads only the first challenge and knows
	// only MD5 (with the default, SHA-256 first, it stops at the first
	// challenge); here it gets to try every password.
	g := StartGateway(t, GatewayOptions{SIPYAML: fmt.Sprintf("  trusted: [\"127.0.0.2/32\"]\n  users_file: %q\n  auth_algorithms: [MD5, SHA-256]", usersFile(t))})
	host, port, _ = strings.Cut(g.SIP, ":")
	base := sigBase(t, g)
	start := g.Metrics(t)

	// The trusted load: 150 calls into conferences at 15/s, 1 s each.
	load := make(chan error, 1)
	var loadOut string
	loadErrs := filepath.Join(t.TempDir(), "load.err")
	go func() {
		var err error
		loadOut, err = run(t, 3*time.Minute, sipp, g.SIP, "-sn", "uac", "-s", "conf-load", "-m", "150", "-r", "15", "-d", "1000",
			"-i", "127.0.0.2", "-mi", "127.0.0.2", "-p", strconv.Itoa(base+43), "-mp", strconv.Itoa(base+50),
			"-nostdin", "-timeout", "150s", "-timeout_error", "-recv_timeout", "30000", "-trace_err", "-error_file", loadErrs)
		load <- err
	}()

	out, err = run(t, time.Minute, svmap, "-p", port, host)
	if err != nil || !strings.Contains(out, g.SIP) || !strings.Contains(out, "mediagw") {
		t.Errorf("svmap did not find the gateway (err %v):\n%s", err, tail(out, 20))
	}

	phase("svmap")
	for _, force := range []bool{false, true} {
		args := []string{"-t", "0.002", "-p", port, "-m", "INVITE", "-d", dictionary(t, 1000), host}
		if force {
			args = append([]string{"--force"}, args...)
		}
		out, err = run(t, 2*time.Minute, svwar, args...)
		found := svwarFound(out)
		t.Logf("svwar (force %v): %d extensions reported; output:\n%s", force, len(found), tail(out, 8))
		if err != nil {
			t.Errorf("svwar: %v\n%s", err, tail(out, 20))
		}
		kinds := map[string]bool{}
		for _, v := range found {
			kinds[v] = true
		}
		if len(found) != 0 && (len(found) != 1000 || len(kinds) != 1) {
			t.Errorf("svwar told names apart: %d reported, kinds %v", len(found), kinds)
		}
	}

	phase("svwar")
	words := []string{"password", "123456", "alice", "letmein", "qwerty", "secret", "admin", "1234", "0000", "mediagw"}
	dict := filepath.Join(t.TempDir(), "passwords.txt")
	if err := os.WriteFile(dict, []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := g.Metrics(t)
	out, err = run(t, 2*time.Minute, svcrack, "-u", "alice", "-d", dict, "-p", port, "-m", "INVITE",
		"--requesturi", "sip:conf-crack@"+g.SIP, host)
	t.Logf("svcrack:\n%s", tail(out, 6))
	if err != nil || strings.Contains(out, "| alice") || strings.Contains(out, "password for") || !strings.Contains(out, "found nothing") {
		t.Errorf("svcrack (err %v):\n%s", err, tail(out, 20))
	}
	if d := refused(g.Metrics(t), "auth") - refused(before, "auth"); d != float64(len(words)) {
		t.Errorf("refused{auth} moved by %v for %d guesses", d, len(words))
	}

	phase("svcrack")
	select {
	case err := <-load:
		if err != nil {
			errs, _ := os.ReadFile(loadErrs)
			t.Errorf("the trusted SIPp load failed calls during the scan: %v\n%s\n%s", err, tail(loadOut, 40), tail(string(errs), 40))
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("SIPp load did not finish")
	}
	phase("SIPp load")
	g.WaitGaugesBack(t, start)
	end := g.Metrics(t)
	if d := refused(end, "untrusted") - refused(start, "untrusted"); d < 2 {
		t.Errorf("refused{untrusted} moved by %v", d)
	}
	t.Logf("refused: untrusted +%v, auth +%v; ports free %v (start %v)",
		refused(end, "untrusted")-refused(start, "untrusted"), refused(end, "auth")-refused(start, "auth"),
		end["mediagw_rtp_ports_free"], start["mediagw_rtp_ports_free"])
}
