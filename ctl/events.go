package ctl

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// events follows GET /v1/events (Server-Sent Events) and prints each event:
// a line of its type and fields for people, or one JSON object per line
// ({"event": TYPE, "data": {...}}) with -o json. -n stops after that many.
func events(c *client, args []string) (int, error) {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conn := fs.String("connection", "", "only events of this ConnectionId")
	conf := fs.String("conference", "", "only events of this ConferenceId")
	count := fs.Int("n", 0, "exit after this many events (0 = follow until the stream ends)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return ExitUsage, usageError("events takes [-connection ID] [-conference ID] [-n COUNT]")
	}
	q := url.Values{}
	if *conn != "" {
		q.Set("ConnectionId", *conn)
	}
	if *conf != "" {
		q.Set("ConferenceId", *conf)
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	// The stream stays open: no overall client timeout.
	stream := &client{http: &http.Client{}, base: c.base, token: c.token, json: c.json, out: c.out}
	res, err := stream.request(http.MethodGet, path, nil)
	if err != nil {
		return ExitTransport, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return ExitTransport, httpError(res, raw)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return ExitTransport, fmt.Errorf("GET %s: Content-Type %q, want text/event-stream", path, ct)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var typ string
	var data strings.Builder
	seen := 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				typ = ""
				continue // a comment or keep-alive block
			}
			if err := c.printEvent(typ, data.String()); err != nil {
				return ExitTransport, err
			}
			typ = ""
			data.Reset()
			seen++
			if *count > 0 && seen >= *count {
				return ExitOK, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return ExitTransport, fmt.Errorf("event stream: %v", err)
	}
	return ExitOK, nil
}

func (c *client) printEvent(typ, data string) error {
	var fields map[string]any
	if err := json.Unmarshal([]byte(data), &fields); err != nil {
		return fmt.Errorf("event %s: data is not JSON: %.200q", typ, data)
	}
	if c.json {
		return c.writeCompact(map[string]any{"event": typ, "data": fields})
	}
	var b strings.Builder
	b.WriteString(time.Now().UTC().Format("15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(typ)
	for _, k := range sortedKeys(fields) {
		fmt.Fprintf(&b, " %s=%v", k, fields[k])
	}
	_, err := fmt.Fprintln(c.out, b.String())
	return err
}

func (c *client) writeCompact(v any) error {
	return json.NewEncoder(c.out).Encode(v)
}
