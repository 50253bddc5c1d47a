package cluster

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is the yaml section `cluster` (DESIGN §10).
type Config struct {
	// Node is this node's name, unique in the cluster; "" = standalone
	// (no cluster: nothing below is used).
	Node string `yaml:"node"`
	// Advertise is the URL other nodes use to reach this node's HTTP API.
	Advertise string      `yaml:"advertise"`
	Redis     RedisConfig `yaml:"redis"`
	// TTL is the lifetime of a node's heartbeat record: it is renewed
	// every third of it, and a node whose record expired is dead.
	TTL time.Duration `yaml:"ttl"`
	// Grace is how long a dead node's records are kept before a survivor
	// cleans them (a node restarting within it finds its own).
	Grace time.Duration `yaml:"grace"`
}

// RedisConfig is `cluster.redis`: the registry every node shares.
type RedisConfig struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
}

// DefaultConfig is the built-in `cluster` section: standalone.
func DefaultConfig() Config {
	return Config{Redis: RedisConfig{Prefix: "mediagw:"}, TTL: 3 * time.Second, Grace: 2 * time.Second}
}

// Enabled reports whether this gateway is a cluster node.
func (c Config) Enabled() bool { return c.Node != "" }

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	for _, r := range c.Node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("cluster.node: %q: letters, digits, '-', '_' and '.' only", c.Node)
		}
	}
	if len(c.Node) > 64 {
		return fmt.Errorf("cluster.node: %q is longer than 64", c.Node)
	}
	u, err := url.Parse(c.Advertise)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cluster.advertise: %q is not an http(s) URL (other nodes forward API requests to it)", c.Advertise)
	}
	if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		return fmt.Errorf("cluster.redis.addr: %q is not host:port", c.Redis.Addr)
	}
	if c.Redis.DB < 0 {
		return fmt.Errorf("cluster.redis.db: %d is negative", c.Redis.DB)
	}
	if c.Redis.Prefix == "" {
		return fmt.Errorf("cluster.redis.prefix: must not be empty")
	}
	if c.TTL < 300*time.Millisecond {
		return fmt.Errorf("cluster.ttl: %s is below 300ms", c.TTL)
	}
	if c.Grace < 0 {
		return fmt.Errorf("cluster.grace: %s is negative", c.Grace)
	}
	return nil
}
