package store

import (
	"fmt"
	"net"
	"strings"
)

// Config is the yaml section `state` (DESIGN §10).
type Config struct {
	Store string      `yaml:"store"` // none | file | redis
	Path  string      `yaml:"path"`  // the embedded store's file (store: file)
	Redis RedisConfig `yaml:"redis"` // store: redis
}

// RedisConfig is `state.redis`.
type RedisConfig struct {
	Addr     string `yaml:"addr"`     // host:port
	Password string `yaml:"password"` // "" = no AUTH
	DB       int    `yaml:"db"`       // SELECT index
	Prefix   string `yaml:"prefix"`   // every key this gateway writes starts with it
}

// Store kinds accepted in Config.Store.
const (
	KindNone  = "none"
	KindFile  = "file"
	KindRedis = "redis"
)

// DefaultConfig is the built-in `state` section: the embedded file store.
func DefaultConfig() Config {
	return Config{
		Store: KindFile,
		Path:  "mediagw.state",
		Redis: RedisConfig{Addr: "127.0.0.1:6379", Prefix: "mediagw:"},
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	switch c.Store {
	case KindNone:
	case KindFile:
		if strings.TrimSpace(c.Path) == "" {
			return fmt.Errorf("state.path: required with state.store: file")
		}
	case KindRedis:
		if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
			return fmt.Errorf("state.redis.addr: %q is not host:port", c.Redis.Addr)
		}
		if c.Redis.DB < 0 {
			return fmt.Errorf("state.redis.db: %d is negative", c.Redis.DB)
		}
		if c.Redis.Prefix == "" {
			return fmt.Errorf("state.redis.prefix: must not be empty (the gateway's keys would mix with everything else on the server)")
		}
	default:
		return fmt.Errorf("state.store: %q is not one of none, file, redis", c.Store)
	}
	return nil
}
