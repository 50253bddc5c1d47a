// Package ctl is `gateway ctl`: an operator's command line over the HTTP
// control API (list, show, delete, mute, drain, stats, events). It speaks
// only HTTP and JSON, so it imports nothing of ours; output is a table for
// people or the API's JSON (-o json) for scripts, and the exit code is the
// action's ResultCode.
package ctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Exit codes besides a ResultCode (4..36 are the action's ResultCode).
const (
	ExitOK        = 0
	ExitTransport = 1 // the API could not be reached, or answered with an HTTP error
	ExitUsage     = 2 // bad command line
)

// Env reads an environment variable (os.Getenv in main).
type Env func(string) string

// usage is printed for -h and for a bad command line.
const usage = `usage: gateway ctl [-addr URL] [-token T] [-o table|json] COMMAND [ARGS]

Talks to the gateway's HTTP control API.
  -addr   API base URL (default $MEDIAGW_ADDR or http://127.0.0.1:8080)
  -token  bearer token (default $MEDIAGW_TOKEN)
  -o      output: table (default) or json

Commands:
  list [connections|conferences]        what the gateway holds now
  show ID                               one connection (or conference) in detail
  delete CONNID                         release a connection
  delete -conference CONFID [CONNID]    release a conference and its connections,
                                        or with CONNID remove that member only
  mute CONFID CONNID [on|off]           mute a conference member (default on)
  drain [on|off]                        stop (or resume) taking new calls; calls in
                                        progress continue; /healthz answers 503
  play [-digit K] [-max MS] TARGET PROMPT [PROMPT [PROMPT]]
                                        play files under media.dir to a connection
                                        (CONNID) or a conference (conf:CONFID)
  record [-file F] [-encoding E] [-max MS] [-silence MS] TARGET
                                        record a connection or a conference's mix
                                        into media.record_dir
  stop OPID [CONNID]                    stop a media operation (play, record, ...)
  digits CONNID KEYS                    send DTMF keys (0-9*#A-D)
  stats                                 the gateway's counters and gauges
  events [-connection ID] [-conference ID] [-n COUNT]
                                        follow the event stream until interrupted

Exit status: 0 on success, the action's ResultCode when it failed (4..36),
1 when the API could not be reached or refused the request, 2 on bad usage.
`

// Main runs one ctl command line (the arguments after "ctl") and returns the
// exit status.
func Main(args []string, stdout, stderr io.Writer, env Env) int {
	fs := flag.NewFlagSet("gateway ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addr := env("MEDIAGW_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8080"
	}
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, out: stdout}
	fs.StringVar(&c.base, "addr", addr, "API base URL")
	fs.StringVar(&c.token, "token", env("MEDIAGW_TOKEN"), "bearer token")
	output := fs.String("o", "table", "output: table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	switch *output {
	case "table":
	case "json":
		c.json = true
	default:
		fmt.Fprintf(stderr, "gateway ctl: -o %q: want table or json\n", *output)
		return ExitUsage
	}
	c.base = strings.TrimRight(c.base, "/")
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	cmd, ok := commands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(stderr, "gateway ctl: unknown command %q\n", fs.Arg(0))
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	code, err := cmd(c, fs.Args()[1:])
	if err != nil {
		fmt.Fprintln(stderr, "gateway ctl:", err)
		var u usageError
		if errors.As(err, &u) {
			return ExitUsage
		}
	}
	return code
}

// usageError is a bad command line.
type usageError string

func (u usageError) Error() string { return string(u) }

type command func(c *client, args []string) (int, error)

var commands = map[string]command{
	"list":   list,
	"show":   show,
	"delete": deleteCmd,
	"mute":   mute,
	"drain":  drain,
	"stats":  stats,
	"events": events,
	"play":   play,
	"record": record,
	"stop":   stopOp,
	"digits": digits,
}
