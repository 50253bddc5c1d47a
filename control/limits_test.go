package control

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/testcert"
)

// An action body over 64 KiB is refused with 413 (ResultCode 35), not read.
func TestOversizedBody(t *testing.T) {
	s, _, _ := newServer(t, "")
	body := `{"ConnectionId":"` + strings.Repeat("1", maxBody) + `"}`
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/v1/actions/DeleteConnection", strings.NewReader(body)))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"ResultCode": "35"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
}

// serve runs s on a loopback listener until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// A body that trickles in is cut at the body deadline: the connection is
// answered or closed, not held (slowloris on the body).
func TestSlowBodyCut(t *testing.T) {
	s, _, _ := newServer(t, "")
	s.bodyTimeout = 300 * time.Millisecond
	addr := serve(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/actions/DeleteConnection HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Conn"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("a trickling body answered %d", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection is still held 5 s after the body deadline")
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("cut after %v", time.Since(start))
	}
}

// A long GET is not cut by the body deadline (the event stream relies on it).
func TestBodyDeadlineOnlyForBodies(t *testing.T) {
	s, _, _ := newServer(t, "")
	s.bodyTimeout = 100 * time.Millisecond
	s.mux.HandleFunc("GET /test/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	addr := serve(t, s)
	resp, err := http.Get("http://" + addr + "/test/slow")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "done" {
		t.Fatalf("%q", b)
	}
}

// http.tls: the listener speaks HTTPS, the token rule is the same.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s, _, _ := newServer(t, "sekrit")
	s.cfg.TLS = TLSConfig{Cert: certFile, Key: keyFile}
	if err := s.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	cli := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	get := func(token string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+"/v1/connections", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := cli.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("sekrit"); c != 200 {
		t.Fatalf("with the token: %d", c)
	}
	if c := get("wrong"); c != 401 {
		t.Fatalf("wrong token: %d", c)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatal("plain HTTP answered on the HTTPS listener")
		}
	}
	bad := Config{Listen: "127.0.0.1:0", TLS: TLSConfig{Cert: certFile}}
	if bad.Validate() == nil {
		t.Fatal("http.tls with a cert and no key accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	return certFile, keyFile, testcert.Write(t, certFile, keyFile, "mediagw test")
}
