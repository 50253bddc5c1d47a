package store

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// requirePeers: in CI, or with MEDIAGW_REQUIRE_PEERS set (make test), a
// missing peer fails the test instead of skipping it.
func requirePeers() bool {
	return os.Getenv("CI") != "" || os.Getenv("MEDIAGW_REQUIRE_PEERS") != ""
}

// redisServer is a Debian redis-server on a loopback port, without
// persistence, in a temporary directory.
type redisServer struct {
	t     testing.TB
	port  int
	dir   string
	extra []string // more redis-server arguments
	cmd   *exec.Cmd
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if requirePeers() {
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
	s := &redisServer{t: t, port: port, dir: t.TempDir(), extra: extra}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--rename-command", "KEYS", ""}, s.extra...) // the store must never need KEYS
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.cmd = cmd
	c := s.client()
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
			s.t.Fatalf("redis-server on %s did not answer: %v", s.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: what it held is gone, like a crash of a
// server without persistence).
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// password is the one given with --requirepass, if any.
func (s *redisServer) password() string {
	for i, a := range s.extra {
		if a == "--requirepass" && i+1 < len(s.extra) {
			return s.extra[i+1]
		}
	}
	return ""
}

func (s *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password(), DisableIdentity: true, MaxRetries: -1})
}

var prefixSeq int

func (s *redisServer) prefix() string {
	prefixSeq++
	return fmt.Sprintf("t%d:", prefixSeq)
}
