// Package procstat reads what the load generator needs from /proc: the CPU
// time a process used, and the receive-queue drops of UDP sockets.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of utime/stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const ClockTick = 10 * time.Millisecond

// ErrFormat reports an unexpected /proc file.
var ErrFormat = errors.New("procstat: unexpected format")

// CPU returns utime+stime of process pid (all its threads); pid 0 = self.
func CPU(pid int) (time.Duration, error) {
	name := "/proc/self/stat"
	if pid > 0 {
		name = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	return ParseStatCPU(b)
}

// ParseStatCPU extracts utime+stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func ParseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' in stat", ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after comm", ErrFormat, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: utime %q stime %q", ErrFormat, f[11], f[12])
	}
	return time.Duration(ut+st) * ClockTick, nil
}

// UDPDrops sums the "drops" column of /proc/net/udp for IPv4 sockets whose
// local port is in [lo, hi].
func UDPDrops(lo, hi int) (uint64, error) {
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseUDPDrops(f, lo, hi)
}

// ParseUDPDrops parses /proc/net/udp text; see UDPDrops.
func ParseUDPDrops(r io.Reader, lo, hi int) (uint64, error) {
	sc := bufio.NewScanner(r)
	var total uint64
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 13 {
			return 0, fmt.Errorf("%w: udp line %q", ErrFormat, sc.Text())
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			return 0, fmt.Errorf("%w: local address %q", ErrFormat, f[1])
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("%w: port %q", ErrFormat, portHex)
		}
		if int(port) < lo || int(port) > hi {
			continue
		}
		d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: drops %q", ErrFormat, f[len(f)-1])
		}
		total += d
	}
	return total, sc.Err()
}

// CoreTimes returns the busy and total jiffies of one CPU from /proc/stat
// (busy = total − idle − iowait; softirq time counts as busy).
func CoreTimes(cpu int) (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return ParseCoreTimes(b, cpu)
}

// ParseCoreTimes parses /proc/stat text; see CoreTimes.
func ParseCoreTimes(b []byte, cpu int) (busy, total uint64, err error) {
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		if len(f) < 5 {
			return 0, 0, fmt.Errorf("%w: %q", ErrFormat, line)
		}
		var idle uint64
		for i, s := range f {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("%w: %q", ErrFormat, line)
			}
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			}
			total += v
		}
		// guest and guest_nice (fields 9, 10) are already included in user and nice
		if len(f) >= 10 {
			g1, _ := strconv.ParseUint(f[8], 10, 64)
			g2, _ := strconv.ParseUint(f[9], 10, 64)
			total -= g1 + g2
		}
		return total - idle, total, nil
	}
	return 0, 0, fmt.Errorf("%w: no line for cpu%d", ErrFormat, cpu)
}
