package store

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string // "" = valid
	}{
		"none":            {func(c *Config) { c.Store = "none"; c.Path = "" }, ""},
		"redis":           {func(c *Config) { c.Store = "redis" }, ""},
		"unknown store":   {func(c *Config) { c.Store = "etcd" }, "state.store"},
		"empty path":      {func(c *Config) { c.Path = " " }, "state.path"},
		"bad addr":        {func(c *Config) { c.Store = "redis"; c.Redis.Addr = "localhost" }, "state.redis.addr"},
		"negative db":     {func(c *Config) { c.Store = "redis"; c.Redis.DB = -1 }, "state.redis.db"},
		"empty prefix":    {func(c *Config) { c.Store = "redis"; c.Redis.Prefix = "" }, "state.redis.prefix"},
		"redis unused ok": {func(c *Config) { c.Redis.Addr = "" }, ""}, // store: file ignores redis
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOpenNone(t *testing.T) {
	st, err := Open(Config{Store: KindNone}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("conn", "1", []byte("x"))
	if k, err := st.Kinds(); err != nil || len(k) != 0 {
		t.Fatalf("none keeps %v, %v", k, err)
	}
	var prev uint64
	for i := 0; i < 3000; i++ {
		v, err := st.Next("conn")
		if err != nil || v <= prev {
			t.Fatalf("Next = %d, %v after %d", v, err, prev)
		}
		prev = v
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Store: "bogus"}, Options{}); err == nil {
		t.Fatal("Open of an invalid config succeeded")
	}
	if _, err := st.Next("conn"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}
