package ctl

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
)

// statsKeep says which series of /metrics `stats` shows: ours, and the
// process figures an operator checks for leaks.
func statsKeep(name string) bool {
	return strings.HasPrefix(name, "mediagw_") || name == "process_resident_memory_bytes" ||
		name == "process_open_fds" || name == "go_goroutines"
}

// stats prints the gateway's series from /metrics, one per line.
func stats(c *client, args []string) (int, error) {
	if len(args) != 0 {
		return ExitUsage, usageError("stats takes no arguments")
	}
	raw, err := c.get("/metrics", nil)
	if err != nil {
		return ExitTransport, err
	}
	series, err := parseMetrics(raw)
	if err != nil {
		return ExitTransport, err
	}
	if c.json {
		return ExitOK, c.writeJSON(series)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "SERIES\tVALUE\n")
	for _, k := range sortedKeys(series) {
		fmt.Fprintf(w, "%s\t%s\n", k, strconv.FormatFloat(series[k], 'f', -1, 64))
	}
	return ExitOK, w.Flush()
}

// parseMetrics reads the Prometheus text format into "name{labels}" →
// value for the series statsKeep wants.
func parseMetrics(raw []byte) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces.
		end := strings.LastIndexByte(line, '}')
		var key, rest string
		if end > 0 {
			key, rest = line[:end+1], strings.TrimSpace(line[end+1:])
		} else {
			k, r, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("/metrics: bad line %.100q", line)
			}
			key, rest = k, r
		}
		name := key
		if i := strings.IndexByte(key, '{'); i >= 0 {
			name = key[:i]
		}
		if !statsKeep(name) {
			continue
		}
		val, _, _ := strings.Cut(rest, " ")
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %s: %v", key, err)
		}
		out[key] = v
	}
	return out, sc.Err()
}
