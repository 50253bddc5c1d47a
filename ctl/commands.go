package ctl

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// connection and conference are the API's views (control/views.go).
type connection struct {
	ConnectionID    string `json:"ConnectionId"`
	ConferenceID    string `json:"ConferenceId"`
	MediaRxIP       string `json:"MediaRxIP"`
	MediaRxPort     string `json:"MediaRxPort"`
	MediaTxIP       string `json:"MediaTxIP"`
	MediaTxPort     string `json:"MediaTxPort"`
	Codec           string `json:"Codec"`
	Framesize       int64  `json:"Framesize"`
	Mode            string `json:"Mode"`
	Owner           string `json:"Owner"`
	CallID          string `json:"CallId"`
	PacketsSent     uint64 `json:"PacketsSent"`
	OctetsSent      uint64 `json:"OctetsSent"`
	PacketsReceived uint64 `json:"PacketsReceived"`
	OctetsReceived  uint64 `json:"OctetsReceived"`
	PacketsLost     int64  `json:"PacketsLost"`
	JitterMs        int64  `json:"JitterMs"`
	LatencyMs       int64  `json:"LatencyMs"`
	Created         string `json:"Created"`
}

type member struct {
	ConnectionID string `json:"ConnectionId"`
	Mute         bool   `json:"Mute"`
	ReceiveOnly  bool   `json:"ReceiveOnly"`
	Coach        bool   `json:"Coach"`
	Pupil        bool   `json:"Pupil"`
}

type conference struct {
	ConferenceID string   `json:"ConferenceId"`
	Kind         string   `json:"Kind"`
	Mixing       bool     `json:"Mixing"`
	Members      []member `json:"Members"`
}

func (c *client) connections() ([]connection, error) {
	var v struct{ Connections []connection }
	_, err := c.get("/v1/connections", &v)
	return v.Connections, err
}

func (c *client) conferences() ([]conference, error) {
	var v struct{ Conferences []conference }
	_, err := c.get("/v1/conferences", &v)
	return v.Conferences, err
}

func addr(ip, port string) string {
	if ip == "" {
		return "-"
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + port
	}
	return ip + ":" + port
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func list(c *client, args []string) (int, error) {
	what := "all"
	if len(args) > 1 {
		return ExitUsage, usageError("list takes at most one argument: connections or conferences")
	}
	if len(args) == 1 {
		what = args[0]
		if what != "connections" && what != "conferences" {
			return ExitUsage, usageError(fmt.Sprintf("list %q: want connections or conferences", what))
		}
	}
	var conns []connection
	var confs []conference
	var err error
	if what != "conferences" {
		if conns, err = c.connections(); err != nil {
			return ExitTransport, err
		}
	}
	if what != "connections" {
		if confs, err = c.conferences(); err != nil {
			return ExitTransport, err
		}
	}
	if c.json {
		out := map[string]any{}
		if what != "conferences" {
			out["Connections"] = nonNil(conns)
		}
		if what != "connections" {
			out["Conferences"] = nonNil(confs)
		}
		return ExitOK, c.writeJSON(out)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	if what != "conferences" {
		fmt.Fprintf(w, "CONNECTION\tCONFERENCE\tOWNER\tCODEC\tMODE\tLOCAL\tREMOTE\tPKTS IN\tPKTS OUT\tLOST\tJITTER\n")
		for _, cn := range conns {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%dms\n", cn.ConnectionID, dash(cn.ConferenceID),
				cn.Owner, cn.Codec, cn.Mode, addr(cn.MediaRxIP, cn.MediaRxPort), addr(cn.MediaTxIP, cn.MediaTxPort),
				cn.PacketsReceived, cn.PacketsSent, cn.PacketsLost, cn.JitterMs)
		}
	}
	if what == "all" {
		fmt.Fprintln(w)
	}
	if what != "connections" {
		fmt.Fprintf(w, "CONFERENCE\tKIND\tMIXING\tMEMBERS\n")
		for _, cf := range confs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cf.ConferenceID, cf.Kind, yesNo(cf.Mixing), members(cf.Members))
		}
	}
	return ExitOK, w.Flush()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// members lists a conference's members with their attributes, e.g. "3 4(muted) 7(recvonly)".
func members(ms []member) string {
	if len(ms) == 0 {
		return "-"
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		var attrs []string
		if m.Mute {
			attrs = append(attrs, "muted")
		}
		if m.ReceiveOnly {
			attrs = append(attrs, "recvonly")
		}
		if m.Coach {
			attrs = append(attrs, "coach")
		}
		if m.Pupil {
			attrs = append(attrs, "pupil")
		}
		parts[i] = m.ConnectionID
		if len(attrs) > 0 {
			parts[i] += "(" + strings.Join(attrs, ",") + ")"
		}
	}
	return strings.Join(parts, " ")
}

// show prints one connection or conference: an ID that names a connection
// shows it (and its conference); otherwise a conference of that ID.
func show(c *client, args []string) (int, error) {
	if len(args) != 1 {
		return ExitUsage, usageError("show takes one ID")
	}
	id := args[0]
	conns, err := c.connections()
	if err != nil {
		return ExitTransport, err
	}
	confs, err := c.conferences()
	if err != nil {
		return ExitTransport, err
	}
	var cn *connection
	for i := range conns {
		if conns[i].ConnectionID == id {
			cn = &conns[i]
		}
	}
	var cf *conference
	confID := id
	if cn != nil {
		confID = cn.ConferenceID
	}
	for i := range confs {
		if confID != "" && confs[i].ConferenceID == confID {
			cf = &confs[i]
		}
	}
	if cn == nil && cf == nil {
		code := 24 // an unknown conference, as the table would answer
		if isConnectionID(id) {
			code = 23
		}
		if c.json {
			return code, c.writeJSON(map[string]string{"ResultCode": strconv.Itoa(code), "Branch": "Failure"})
		}
		return code, fmt.Errorf("%s: no such connection or conference (ResultCode %d)", id, code)
	}
	if c.json {
		out := map[string]any{}
		if cn != nil {
			out["Connection"] = cn
		}
		if cf != nil {
			out["Conference"] = cf
		}
		return ExitOK, c.writeJSON(out)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	if cn != nil {
		rows := [][2]string{
			{"Connection", cn.ConnectionID}, {"Conference", dash(cn.ConferenceID)}, {"Owner", cn.Owner},
			{"Call-ID", dash(cn.CallID)}, {"Codec", fmt.Sprintf("%s, %d ms", cn.Codec, cn.Framesize)}, {"Mode", cn.Mode},
			{"Local", addr(cn.MediaRxIP, cn.MediaRxPort)}, {"Remote", addr(cn.MediaTxIP, cn.MediaTxPort)},
			{"Received", fmt.Sprintf("%d packets, %d bytes", cn.PacketsReceived, cn.OctetsReceived)},
			{"Sent", fmt.Sprintf("%d packets, %d bytes", cn.PacketsSent, cn.OctetsSent)},
			{"Lost", strconv.FormatInt(cn.PacketsLost, 10)}, {"Jitter", fmt.Sprintf("%d ms", cn.JitterMs)},
			{"Latency", fmt.Sprintf("%d ms", cn.LatencyMs)}, {"Created", cn.Created},
		}
		for _, r := range rows {
			fmt.Fprintf(w, "%s:\t%s\n", r[0], r[1])
		}
	}
	if cf != nil {
		if cn != nil {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Conference:\t%s\nKind:\t%s\nMixing:\t%s\nMembers:\t%s\n", cf.ConferenceID, cf.Kind, yesNo(cf.Mixing), members(cf.Members))
	}
	return ExitOK, w.Flush()
}

// isConnectionID reports whether id looks like a ConnectionId (a decimal
// number without a leading zero).
func isConnectionID(id string) bool {
	if id == "" || id[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

func deleteCmd(c *client, args []string) (int, error) {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("conference", "", "ConferenceId")
	if err := fs.Parse(args); err != nil {
		return ExitUsage, usageError("delete: " + err.Error())
	}
	p := map[string]string{}
	switch fs.NArg() {
	case 0:
	case 1:
		p["ConnectionId"] = fs.Arg(0)
	default:
		return ExitUsage, usageError("delete takes one ConnectionId")
	}
	if *conf != "" {
		p["ConferenceId"] = *conf
	}
	if len(p) == 0 {
		return ExitUsage, usageError("delete needs a ConnectionId, -conference ID, or both")
	}
	answer, err := c.action("DeleteConnection", p)
	if err != nil {
		return ExitTransport, err
	}
	return c.report("DeleteConnection", answer)
}

func mute(c *client, args []string) (int, error) {
	if len(args) < 2 || len(args) > 3 {
		return ExitUsage, usageError("mute takes CONFID CONNID [on|off]")
	}
	on := "true"
	if len(args) == 3 {
		switch args[2] {
		case "on":
		case "off":
			on = "false"
		default:
			return ExitUsage, usageError(fmt.Sprintf("mute %q: want on or off", args[2]))
		}
	}
	answer, err := c.action("SetConfereeAttribute", map[string]string{"ConferenceId": args[0], "ConnectionId": args[1], "Mute": on})
	if err != nil {
		return ExitTransport, err
	}
	return c.report("SetConfereeAttribute", answer)
}

func drain(c *client, args []string) (int, error) {
	on := true
	switch {
	case len(args) == 0:
	case len(args) == 1 && args[0] == "on":
	case len(args) == 1 && args[0] == "off":
		on = false
	default:
		return ExitUsage, usageError("drain takes on or off")
	}
	body, _ := json.Marshal(map[string]bool{"Drain": on})
	res, err := c.request("POST", "/v1/drain", body)
	if err != nil {
		return ExitTransport, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != 200 {
		return ExitTransport, httpError(res, raw)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ExitTransport, fmt.Errorf("POST /v1/drain: %v", err)
	}
	if c.json {
		return ExitOK, c.writeJSON(v)
	}
	state := "taking new calls"
	if d, _ := v["Draining"].(bool); d {
		state = "draining: new calls are refused, calls in progress continue"
	}
	_, err = fmt.Fprintln(c.out, state)
	return ExitOK, err
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
