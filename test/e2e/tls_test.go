package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testcert"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 named cn.
func writeTestCert(t *testing.T, certFile, keyFile, cn string) *x509.CertPool {
	return testcert.Write(t, certFile, keyFile, cn)
}

// sClientSubject is the certificate subject openssl s_client sees at addr.
func sClientSubject(t *testing.T, addr string) string {
	t.Helper()
	openssl := requireTool(t, "openssl")
	out, _ := run(t, 20*time.Second, "sh", "-c", openssl+" s_client -connect "+addr+" </dev/null 2>&1")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "subject=") {
			return strings.TrimSpace(strings.TrimPrefix(line, "subject="))
		}
	}
	t.Fatalf("openssl s_client %s saw no certificate:\n%s", addr, out)
	return ""
}

// The binary with a tls:// listener: openssl s_client sees its certificate;
// a caller over TLS joins a conference next to a SIPp caller over UDP and
// leaves with BYE over TLS; after SIGHUP with a new certificate s_client
// sees the new one, and calls go on.
func TestSIPOverTLSThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeTestCert(t, certFile, keyFile, "mediagw e2e one")
	g := StartGateway(t, GatewayOptions{TLS: true, SIPYAML: fmt.Sprintf("  tls: {cert: %q, key: %q}", certFile, keyFile)})
	start := g.Metrics(t)
	if s := sClientSubject(t, g.SIPTLS); !strings.Contains(s, "mediagw e2e one") {
		t.Fatalf("s_client subject %q", s)
	}

	// A UDP SIPp caller stays in conf-tls while the TLS caller comes and goes.
	sipp := requireTool(t, "sipp")
	sippDone := make(chan error, 1)
	go func() {
		_, err := run(t, time.Minute, sipp, "-sn", "uac", "-s", "conf-tls", g.SIP, "-i", "127.0.0.1", "-p", "0",
			"-m", "1", "-d", "4000", "-nostdin", "-timeout", "30s")
		sippDone <- err
	}()
	waitMembers := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if countMembers(t, g, "tls") == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("conference tls never had %d members", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMembers(1)

	c, err := tls.Dial("tcp", g.SIPTLS, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	send := func(method, cseq, toTag, body string) {
		to := "<sips:conf-tls@" + g.SIPTLS + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		msg := fmt.Sprintf("%s sips:conf-tls@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-%s-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sips:alice@%s>;tag=al\r\nTo: %s\r\nCall-ID: tls-e2e\r\nCSeq: %s %s\r\nContact: <sips:alice@%s;transport=tls>\r\n",
			method, g.SIPTLS, local, method, time.Now().UnixNano(), local, to, cseq, method, local)
		if body != "" {
			msg += "Content-Type: application/sdp\r\n"
		}
		msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
	}
	final := func() (string, string) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			head, err := readHead(r)
			if err != nil {
				t.Fatalf("over TLS: %v", err)
			}
			if !strings.HasPrefix(head, "SIP/2.0 1") {
				return head, tagOf(head)
			}
		}
	}
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	send("INVITE", "1", "", offer)
	head, toTag := final()
	if !strings.HasPrefix(head, "SIP/2.0 200") || !strings.Contains(head, "sips:") || !strings.Contains(head, "SIP/2.0/TLS") {
		t.Fatalf("INVITE over TLS answered:\n%s", head)
	}
	send("ACK", "1", toTag, "")
	waitMembers(2)
	send("BYE", "2", toTag, "")
	if head, _ = final(); !strings.HasPrefix(head, "SIP/2.0 200") {
		t.Fatalf("BYE over TLS: %s", head)
	}
	waitMembers(1)

	writeTestCert(t, certFile, keyFile, "mediagw e2e two")
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Logs(), "TLS certificate reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no TLS reload logged after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := sClientSubject(t, g.SIPTLS); !strings.Contains(s, "mediagw e2e two") {
		t.Fatalf("after SIGHUP s_client subject %q", s)
	}
	if err := <-sippDone; err != nil {
		t.Fatalf("the UDP SIPp caller: %v", err)
	}
	g.WaitGaugesBack(t, start)
}

// readHead reads one SIP message's start line and headers (and skips its body).
func readHead(r *bufio.Reader) (string, error) {
	var b strings.Builder
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(line)
		if strings.HasPrefix(strings.ToLower(line), "content-length:") {
			fmt.Sscan(strings.TrimSpace(line[len("content-length:"):]), &n)
		}
		if line == "\r\n" {
			_, err := io.CopyN(io.Discard, r, int64(n))
			return b.String(), err
		}
	}
}

// tagOf is the To-tag of a response head.
func tagOf(head string) string {
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "to:") {
			if _, tag, ok := strings.Cut(line, "tag="); ok {
				return strings.TrimSpace(strings.Split(tag, ";")[0])
			}
		}
	}
	return ""
}

// countMembers is how many connections /v1/connections lists in conference id.
func countMembers(t *testing.T, g *Gateway, id string) int {
	t.Helper()
	resp, err := http.Get(g.HTTP + "/v1/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Connections []struct {
			ConferenceID string `json:"ConferenceId"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range list.Connections {
		if c.ConferenceID == id {
			n++
		}
	}
	return n
}
