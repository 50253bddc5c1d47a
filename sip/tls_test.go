package sip

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testcert"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	return certFile, keyFile, testcert.Write(t, certFile, keyFile, cn)
}

// readSIP reads one SIP message (headers and body) from r.
func readSIP(t *testing.T, r *bufio.Reader) (string, textproto.MIMEHeader, string) {
	t.Helper()
	tp := textproto.NewReader(r)
	first, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("reading over TLS: %v", err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("headers over TLS: %v", err)
	}
	var n int
	fmt.Sscan(h.Get("Content-Length"), &n)
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return first, h, string(body)
}

// A caller over TLS (sips: Request-URI, Via TLS) joins a conference, is
// answered with a sips: Contact, and hangs up; SIGHUP's ReloadTLS makes new
// connections see a new certificate, a bad one keeps the old.
func TestSIPOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "mediagw one")
	g := startGatewayConfig(t, Config{Trusted: DefaultTrusted, TLS: TLSConfig{Cert: certFile, Key: keyFile}}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.s.ServeTLS(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := ln.Addr().String()

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "mediagw one" {
		t.Fatalf("certificate %q", cn)
	}
	r := bufio.NewReader(c)
	local := c.LocalAddr().String()
	send := func(method, cseq, toTag, body string) {
		to := "<sips:conf-tls@" + addr + ">"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		msg := fmt.Sprintf("%s sips:conf-tls@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-%s-%d\r\nMax-Forwards: 70\r\n"+
			"From: <sips:alice@%s>;tag=al\r\nTo: %s\r\nCall-ID: tls-1\r\nCSeq: %s %s\r\nContact: <sips:alice@%s;transport=tls>\r\n",
			method, addr, local, method, time.Now().UnixNano(), local, to, cseq, method, local)
		if body != "" {
			msg += "Content-Type: application/sdp\r\n"
		}
		msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
	}
	send("INVITE", "1", "", testOffer)
	var first string
	var h textproto.MIMEHeader
	for {
		first, h, _ = readSIP(t, r)
		if !strings.HasPrefix(first, "SIP/2.0 1") {
			break
		}
	}
	if first != "SIP/2.0 200 OK" {
		t.Fatalf("INVITE over TLS: %s", first)
	}
	if ct := h.Get("Contact"); !strings.HasPrefix(strings.Trim(ct, "<"), "sips:") || !strings.Contains(ct, "transport=tls") {
		t.Fatalf("Contact over TLS: %q", ct)
	}
	if !strings.Contains(h.Get("Via"), "SIP/2.0/TLS") {
		t.Fatalf("Via %q", h.Get("Via"))
	}
	_, toTag, _ := strings.Cut(h.Get("To"), "tag=")
	send("ACK", "1", toTag, "")
	eventually(t, "the TLS caller in the conference", func() bool {
		cf, err := g.table.Conference("tls")
		return err == nil && len(cf.Members) == 1
	})
	send("BYE", "2", toTag, "")
	if first, _, _ = readSIP(t, r); first != "SIP/2.0 200 OK" {
		t.Fatalf("BYE over TLS: %s", first)
	}
	eventually(t, "released", func() bool { return len(g.table.Connections()) == 0 })

	// SIGHUP with a broken pair keeps the old certificate; with a new one,
	// new connections see it.
	if err := os.WriteFile(certFile, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.s.ReloadTLS(); err == nil {
		t.Fatal("a junk certificate reloaded")
	}
	c2, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	c2.Close()
	_, _, pool2 := writeCert(t, dir, "mediagw two")
	if _, err := g.s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	c3, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool2})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if cn := c3.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "mediagw two" {
		t.Fatalf("after reload: certificate %q", cn)
	}
}

// A tls:// listener without sip.tls is a configuration error.
func TestTLSConfig(t *testing.T) {
	c := DefaultConfig()
	c.Listen = append(c.Listen, "tls://127.0.0.1:5061")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sip.tls") {
		t.Fatalf("tls listener without a certificate: %v", err)
	}
	c.TLS = TLSConfig{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}
	if err := c.Validate(); err == nil {
		t.Fatal("missing certificate files accepted")
	}
}
