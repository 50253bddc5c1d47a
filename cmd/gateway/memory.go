package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// RuntimeConfig is the yaml section `runtime`: how much memory the Go
// runtime may keep (issue 10, finding 6: after a flood the heap stayed at
// 230–420 MB for good).
type RuntimeConfig struct {
	// MemoryLimit is the soft limit of the Go runtime's memory (GOMEMLIMIT):
	// "512MiB", "2GiB", "1500M", bytes; "" = 90% of the cgroup's memory
	// limit when there is one, else none; "off" = none. GOMEMLIMIT in the
	// environment wins.
	MemoryLimit string `yaml:"memory_limit"`
	// GCPercent is the collector's target (GOGC); GOGC in the environment wins.
	GCPercent int `yaml:"gc_percent"`
	// ReturnIdle gives memory the heap no longer uses back to the system (a
	// collection, then everything free) when more than 32 MiB of the heap
	// holds no live object, checked at this interval; 0 = only the runtime's
	// own pace.
	ReturnIdle time.Duration `yaml:"return_idle"`
}

func defaultRuntimeConfig() RuntimeConfig {
	return RuntimeConfig{GCPercent: gcPercent, ReturnIdle: 30 * time.Second}
}

func (r RuntimeConfig) validate() error {
	if _, err := parseSize(r.MemoryLimit); err != nil && r.MemoryLimit != "off" {
		return fmt.Errorf("runtime.memory_limit: %v", err)
	}
	if r.GCPercent < -1 || r.GCPercent == 0 {
		return fmt.Errorf("runtime.gc_percent: %d: want > 0 (or -1: collect only at the memory limit)", r.GCPercent)
	}
	if r.ReturnIdle < 0 {
		return fmt.Errorf("runtime.return_idle: must be >= 0")
	}
	return nil
}

// parseSize reads a byte size: a number with an optional unit (B, K, KB, KiB,
// M, MB, MiB, G, GB, GiB, T, TB, TiB; K/M/G/T alone are powers of 1024, the
// *B forms powers of 1000). "" is 0.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: want a size such as 512MiB", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a size such as 512MiB", s)
	}
	unit := strings.TrimSpace(s[i:])
	var mult float64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("%q: unknown unit %q", s, unit)
	}
	v := n * mult
	if v >= math.MaxInt64 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(v), nil
}

// cgroupMemoryLimit is the memory limit of the cgroup we run in (v2, then
// v1); 0 when there is none.
func cgroupMemoryLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1 says "no limit" with a huge number
			return 0
		}
		return n
	}
	return 0
}

// memoryLimit decides the runtime's soft memory limit and says where it
// came from; 0 = none.
func memoryLimit(r RuntimeConfig, env func(string) string, cgroup func() int64) (int64, string) {
	if v := env("GOMEMLIMIT"); v != "" {
		return -1, "GOMEMLIMIT " + v
	}
	switch r.MemoryLimit {
	case "off":
		return 0, "off"
	case "":
		if c := cgroup(); c > 0 {
			return c / 10 * 9, "90% of the cgroup's " + strconv.FormatInt(c, 10)
		}
		return 0, "none (no cgroup limit)"
	}
	n, _ := parseSize(r.MemoryLimit) // validated
	return n, "runtime.memory_limit"
}

// applyRuntime sets the collector's target and memory limit before anything
// allocates much, and logs what it chose.
func applyRuntime(r RuntimeConfig, log *logrus.Entry) {
	gc := "GOGC " + os.Getenv("GOGC")
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tables and per-call state); per-call garbage
		// is not. Collecting at 4x the live heap instead of 2x costs a few
		// megabytes and halves the time spent marking at high call rates.
		debug.SetGCPercent(r.GCPercent)
		gc = strconv.Itoa(r.GCPercent)
	}
	limit, from := memoryLimit(r, os.Getenv, cgroupMemoryLimit)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	log.WithField("memory_limit", limit).WithField("from", from).WithField("gc_percent", gc).Info("runtime memory settings")
}

// returnIdleMemory gives the system back heap memory that a burst left idle:
// the runtime's scavenger returns it slowly, and a gateway that goes quiet
// after a flood allocates too little to start another collection, so its
// garbage (and peak RSS) would stay for good. Every interval, when no
// collection ran since the last check and the heap grew since the last one,
// or when over 32 MiB of the heap is free but not returned, it collects and
// returns everything free.
func returnIdleMemory(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	sample := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	const slack = 32 << 20
	var lastCycles uint64
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		cycles, objects, live, free := sample[0].Value.Uint64(), sample[1].Value.Uint64(), sample[2].Value.Uint64(), sample[3].Value.Uint64()
		// Quiet: no collection for a whole interval, so what a burst left is
		// uncounted garbage; collecting a small heap every interval is cheap.
		quiet := cycles == lastCycles && objects > live+(1<<20)
		if quiet || free > slack {
			debug.FreeOSMemory()
			metrics.Read(sample[:1])
			cycles = sample[0].Value.Uint64()
		}
		lastCycles = cycles
	}
}
