package mgcp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxTransID is the largest transaction identifier (RFC 3435 §3.2.1.2).
const MaxTransID = 999999999

// Param is one parameter line, `Name: Value`. Names are case-insensitive;
// the parser stores them in upper case.
type Param struct {
	Name, Value string
}

// Params is an ordered parameter list.
type Params []Param

// Get returns the value of the first parameter called name (any case).
func (ps Params) Get(name string) (string, bool) {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// Value is Get without the presence flag.
func (ps Params) Value(name string) string {
	v, _ := ps.Get(name)
	return v
}

// Command is an MGCP command: `VERB tid endpoint MGCP 1.0 [profile]`,
// parameter lines and an optional SDP body.
type Command struct {
	Verb     string // upper case: CRCX, MDCX, DLCX, ...
	TransID  uint32
	Endpoint string // as sent: local-name@domain
	Version  string // "1.0"
	Profile  string // optional profile after the version, "" when absent
	Params   Params
	SDP      string // body lines, each ended by CRLF; "" when there is none
}

// Response is an MGCP response: `code tid [commentary]`, parameters and an
// optional SDP body.
type Response struct {
	Code    int // 000..999
	TransID uint32
	Comment string
	Params  Params
	SDP     string

	err string // why it failed, for the log line; never sent
}

// ProtocolError is malformed input: the message cannot be understood
// (MGCP 510). TransID is set when the header got that far.
type ProtocolError struct {
	Line    int // 1-based line of the message where parsing stopped
	TransID uint32
	Msg     string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("mgcp: line %d: %s", e.Line, e.Msg)
}

var errEmpty = errors.New("mgcp: empty message")

// Split cuts a datagram into its piggybacked messages: a line holding only
// "." separates them (RFC 3435 §3.6). Empty pieces are dropped.
func Split(datagram []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i <= len(datagram); {
		end := bytes.IndexByte(datagram[i:], '\n')
		var line []byte
		next := len(datagram) + 1
		if end < 0 {
			line = datagram[i:]
		} else {
			line = datagram[i : i+end]
			next = i + end + 1
		}
		if string(bytes.TrimSpace(line)) == "." {
			if msg := datagram[start:i]; len(bytes.TrimSpace(msg)) > 0 {
				out = append(out, msg)
			}
			start = next
		}
		i = next
	}
	if start < len(datagram) {
		if msg := datagram[start:]; len(bytes.TrimSpace(msg)) > 0 {
			out = append(out, msg)
		}
	}
	return out
}

// IsResponse reports whether a message starts with a three-digit code,
// i.e. is a response (or a `000` response acknowledgement).
func IsResponse(msg []byte) bool {
	msg = bytes.TrimLeft(msg, " \t\r\n")
	if len(msg) < 3 {
		return false
	}
	for _, c := range msg[:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(msg) == 3 || msg[3] == ' ' || msg[3] == '\t' || msg[3] == '\r' || msg[3] == '\n'
}

// lines splits a message into lines without their CR/LF endings.
func lines(msg []byte) []string {
	s := string(msg)
	ls := strings.Split(s, "\n")
	if n := len(ls); n > 0 && ls[n-1] == "" {
		ls = ls[:n-1]
	}
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls
}

// headerStart skips leading empty lines; it returns the index of the header line.
func headerStart(ls []string) (int, error) {
	for i, l := range ls {
		if strings.TrimSpace(l) != "" {
			return i, nil
		}
	}
	return 0, errEmpty
}

// ParseTransID parses a transaction identifier: 1 to 9 digits.
func ParseTransID(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 9 {
		return 0, false
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, true
}

// ParseCommand parses one command message (one piece of Split).
func ParseCommand(msg []byte) (*Command, error) {
	ls := lines(msg)
	h, err := headerStart(ls)
	if err != nil {
		return nil, &ProtocolError{Line: 1, Msg: "empty message"}
	}
	f := strings.Fields(ls[h])
	c := &Command{}
	if len(f) >= 2 {
		if tid, ok := ParseTransID(f[1]); ok {
			c.TransID = tid
		}
	}
	perr := func(format string, a ...any) error {
		return &ProtocolError{Line: h + 1, TransID: c.TransID, Msg: fmt.Sprintf(format, a...)}
	}
	if len(f) < 5 {
		return nil, perr("command line needs verb, transaction id, endpoint and MGCP version")
	}
	if !isToken(f[0]) {
		return nil, perr("bad verb %q", f[0])
	}
	c.Verb = strings.ToUpper(f[0])
	if c.TransID == 0 {
		return nil, perr("bad transaction id %q", f[1])
	}
	c.Endpoint = f[2]
	if !strings.EqualFold(f[3], "MGCP") {
		return nil, perr("expected MGCP, got %q", f[3])
	}
	c.Version = f[4]
	if len(f) > 5 {
		c.Profile = strings.Join(f[5:], " ")
	}
	c.Params, c.SDP, err = parseRest(ls, h+1)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			pe.TransID = c.TransID
		}
		return nil, err
	}
	return c, nil
}

// ParseResponse parses one response message (one piece of Split).
func ParseResponse(msg []byte) (*Response, error) {
	ls := lines(msg)
	h, err := headerStart(ls)
	if err != nil {
		return nil, &ProtocolError{Line: 1, Msg: "empty message"}
	}
	line := strings.TrimLeft(ls[h], " \t")
	code, rest := cut(line)
	tidS, comment := cut(rest)
	r := &Response{Comment: strings.TrimSpace(comment)}
	if len(code) != 3 || !isDigits(code) {
		return nil, &ProtocolError{Line: h + 1, Msg: fmt.Sprintf("bad response code %q", code)}
	}
	r.Code, _ = strconv.Atoi(code)
	tid, ok := ParseTransID(tidS)
	if !ok {
		return nil, &ProtocolError{Line: h + 1, Msg: fmt.Sprintf("bad transaction id %q", tidS)}
	}
	r.TransID = tid
	r.Params, r.SDP, err = parseRest(ls, h+1)
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			pe.TransID = tid
		}
		return nil, err
	}
	return r, nil
}

// cut splits s at its first run of blanks.
func cut(s string) (head, tail string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// parseRest reads parameter lines from ls[i:] up to an empty line, then the
// SDP body.
func parseRest(ls []string, i int) (Params, string, error) {
	n := 0 // parameter lines: up to the blank line before the SDP
	for _, l := range ls[i:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		n++
	}
	var ps Params
	if n > 0 {
		ps = make(Params, 0, n)
	}
	for ; i < len(ls); i++ {
		l := ls[i]
		if strings.TrimSpace(l) == "" {
			return ps, body(ls[i+1:]), nil
		}
		colon := strings.IndexByte(l, ':')
		if colon < 0 {
			return nil, "", &ProtocolError{Line: i + 1, Msg: fmt.Sprintf("parameter line without ':': %q", clip(l))}
		}
		name := strings.TrimSpace(l[:colon])
		if !isToken(name) {
			return nil, "", &ProtocolError{Line: i + 1, Msg: fmt.Sprintf("bad parameter name %q", clip(name))}
		}
		ps = append(ps, Param{Name: strings.ToUpper(name), Value: strings.TrimSpace(l[colon+1:])})
	}
	return ps, "", nil
}

// body joins SDP lines with CRLF, dropping trailing empty lines.
func body(ls []string) string {
	for len(ls) > 0 && strings.TrimSpace(ls[len(ls)-1]) == "" {
		ls = ls[:len(ls)-1]
	}
	if len(ls) == 0 {
		return ""
	}
	n := 0
	for _, l := range ls {
		n += len(l) + 2
	}
	var b strings.Builder
	b.Grow(n) // one allocation: no line grows when trimmed
	for _, l := range ls {
		b.WriteString(strings.TrimRight(l, " \t\r"))
		b.WriteString("\r\n")
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// isToken accepts the printable, non-blank ASCII that names verbs and
// parameters (letters, digits and "-+/._").
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '+' || c == '/' || c == '.' || c == '_':
		default:
			return false
		}
	}
	return true
}

// AppendTo appends the wire form of c (CRLF line ends) to b.
func (c *Command) AppendTo(b []byte) []byte {
	b = append(b, c.Verb...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(c.TransID), 10)
	b = append(b, ' ')
	b = append(b, c.Endpoint...)
	b = append(b, " MGCP "...)
	b = append(b, c.Version...)
	if c.Profile != "" {
		b = append(b, ' ')
		b = append(b, c.Profile...)
	}
	b = append(b, "\r\n"...)
	return appendRest(b, c.Params, c.SDP)
}

// Marshal returns the wire form of c.
func (c *Command) Marshal() []byte { return c.AppendTo(nil) }

func (c *Command) String() string { return string(c.Marshal()) }

// AppendTo appends the wire form of r (CRLF line ends) to b.
func (r *Response) AppendTo(b []byte) []byte {
	if r.Code < 100 {
		b = append(b, '0')
		if r.Code < 10 {
			b = append(b, '0')
		}
	}
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(r.TransID), 10)
	if r.Comment != "" {
		b = append(b, ' ')
		b = append(b, r.Comment...)
	}
	b = append(b, "\r\n"...)
	return appendRest(b, r.Params, r.SDP)
}

// Marshal returns the wire form of r.
func (r *Response) Marshal() []byte { return r.AppendTo(nil) }

func (r *Response) String() string { return string(r.Marshal()) }

func appendRest(b []byte, ps Params, sdp string) []byte {
	for _, p := range ps {
		b = append(b, p.Name...)
		b = append(b, ':')
		if p.Value != "" {
			b = append(b, ' ')
			b = append(b, p.Value...)
		}
		b = append(b, "\r\n"...)
	}
	if sdp != "" {
		b = append(b, "\r\n"...)
		b = append(b, sdp...)
	}
	return b
}

// Piggyback joins formatted messages into one datagram with "." lines.
func Piggyback(msgs ...[]byte) []byte {
	if len(msgs) == 1 {
		return msgs[0]
	}
	var b []byte
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ".\r\n"...)
		}
		b = append(b, m...)
	}
	return b
}
