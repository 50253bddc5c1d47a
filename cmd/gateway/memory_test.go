package main

import (
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "512": 512, "512B": 512, "1K": 1024, "1KiB": 1024, "1kb": 1000,
		"512MiB": 512 << 20, "512M": 512 << 20, "1.5GiB": 3 << 29, "2G": 2 << 30, "2GB": 2e9, " 64 MiB ": 64 << 20,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"MiB", "-1M", "1X", "1e30TiB", "1.2.3M", "0x10", "12 mega"} {
		if n, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, accepted", bad, n)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512MiB", "1.5G", "", "1e9", "99999999999999999999T", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

func TestMemoryLimitSource(t *testing.T) {
	noEnv := func(string) string { return "" }
	cg := func(n int64) func() int64 { return func() int64 { return n } }
	cases := []struct {
		cfg    string
		env    string
		cgroup int64
		want   int64
	}{
		{"", "", 1 << 30, (1 << 30) / 10 * 9}, // 90% of the cgroup
		{"", "", 0, 0},                        // no cgroup limit: none
		{"256MiB", "", 1 << 30, 256 << 20},    // the key wins over the cgroup
		{"off", "", 1 << 30, 0},
		{"256MiB", "100MiB", 1 << 30, -1}, // GOMEMLIMIT wins: leave the runtime alone
	}
	for _, c := range cases {
		env := noEnv
		if c.env != "" {
			v := c.env
			env = func(k string) string {
				if k == "GOMEMLIMIT" {
					return v
				}
				return ""
			}
		}
		got, from := memoryLimit(RuntimeConfig{MemoryLimit: c.cfg}, env, cg(c.cgroup))
		if got != c.want {
			t.Errorf("memory_limit %q, GOMEMLIMIT %q, cgroup %d: %d (%s), want %d", c.cfg, c.env, c.cgroup, got, from, c.want)
		}
	}
	if err := (RuntimeConfig{MemoryLimit: "lots", GCPercent: 100}).validate(); err == nil {
		t.Error("memory_limit: lots accepted")
	}
	if err := (RuntimeConfig{GCPercent: 0}).validate(); err == nil {
		t.Error("gc_percent 0 accepted")
	}
}
