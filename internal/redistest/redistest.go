// Package redistest starts a Debian redis-server on a loopback port for a
// test: without persistence, in a temporary directory, with KEYS disabled
// (nothing of ours may need it on a shared server).
package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequirePeers: in CI, or with MEDIAGW_REQUIRE_PEERS set (make test), a
// missing peer fails the test instead of skipping it.
func RequirePeers() bool {
	return os.Getenv("CI") != "" || os.Getenv("MEDIAGW_REQUIRE_PEERS") != ""
}

// Server is one redis-server process.
type Server struct {
	t     testing.TB
	Port  int
	dir   string
	extra []string // more redis-server arguments
	cmd   *exec.Cmd
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Start starts a server (stopped at the test's end); extra are more
// redis-server arguments.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if RequirePeers() {
			t.Fatalf("redis-server is not installed (apt-get install redis-server; test/tools.sh does it) and CI/MEDIAGW_REQUIRE_PEERS is set: %v", err)
		}
		t.Skip("redis-server not installed; set CI or MEDIAGW_REQUIRE_PEERS to make this a failure")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, Port: port, dir: t.TempDir(), extra: extra}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Restart starts the server again on its port (after Kill).
func (s *Server) Restart() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--rename-command", "KEYS", ""}, s.extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd = cmd
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer: %v", s.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill kills the server (SIGKILL: what it held is gone, like a crash of a
// server without persistence).
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Password is the one given with --requirepass, if any.
func (s *Server) Password() string {
	for i, a := range s.extra {
		if a == "--requirepass" && i+1 < len(s.extra) {
			return s.extra[i+1]
		}
	}
	return ""
}

// Client is a client of the server.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.Password(), DisableIdentity: true, MaxRetries: -1})
}
