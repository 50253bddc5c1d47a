package store

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mediagw/mediagw/internal/redistest"
)

func requirePeers() bool { return redistest.RequirePeers() }

// redisServer is internal/redistest's server under the names these tests use.
type redisServer struct{ *redistest.Server }

func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	return &redisServer{redistest.Start(t, extra...)}
}

func (s *redisServer) addr() string          { return s.Addr() }
func (s *redisServer) start()                { s.Restart() }
func (s *redisServer) stop()                 { s.Kill() }
func (s *redisServer) password() string      { return s.Password() }
func (s *redisServer) client() *redis.Client { return s.Client() }

var prefixSeq int

func (s *redisServer) prefix() string {
	prefixSeq++
	return fmt.Sprintf("t%d:", prefixSeq)
}
