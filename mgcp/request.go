package mgcp

import (
	"fmt"
	"strings"
)

// The text of a notification request (RFC 3435 §2.3.3, grammar in its
// Appendix A): R: requested events with their actions, S: signal
// requests, Q: quarantine handling. This file only parses and formats;
// packages.go says what the gateway supports and notify.go acts on it.
//
//	RequestedEvents = requestedEvent 0*("," requestedEvent)
//	requestedEvent  = eventName ["(" requestedActions ")" ["(" eventParameters ")"]]
//	eventName       = [packageName "/"] eventId ["@" (ConnectionId / "$" / "*")]
//	requestedActions = action 0*("," action)
//	action          = "N" / "A" / "D" / "S" / "I" / "K" / "E" "(" embedded ")"
//	embedded        = "R(" RequestedEvents ")" ["," "S(" SignalRequests ")"] ["," "D(" DigitMap ")"]
//	SignalRequests  = signal 0*("," signal); signal = eventName ["(" parameters ")"]

// EventName is [package/]event[@connection].
type EventName struct {
	Pkg  string // upper case; "" when not given
	Name string // as sent: "5", "[0-9#*T]", "hd", "all"
	Conn string // "" when not qualified; "$", "*" or a ConnectionId
}

func (e EventName) String() string {
	var b strings.Builder
	if e.Pkg != "" {
		b.WriteString(e.Pkg)
		b.WriteByte('/')
	}
	b.WriteString(e.Name)
	if e.Conn != "" {
		b.WriteByte('@')
		b.WriteString(e.Conn)
	}
	return b.String()
}

// Action is one requested action: N, A, D, S, I, K, E(...) or an unknown
// one (kept by name, refused by validation with 523).
type Action struct {
	Name     string           // upper case: "N", "A", "D", "S", "I", "K", "E" or other
	Embedded *EmbeddedRequest // for E
}

// EmbeddedRequest is the inside of E(...).
type EmbeddedRequest struct {
	R, S []RequestedEvent // S: signals (Actions unused)
	D    string
	HasR bool
	HasS bool
	HasD bool
}

// RequestedEvent is one item of R: (or of S:, without actions).
type RequestedEvent struct {
	EventName
	Actions   []Action
	HasParams bool
	Params    string // the event or signal parameters, as sent
}

// maxRequestText bounds what is parsed (and so recursion through E(...)).
const (
	maxRequestText  = 4096
	maxEmbedDepth   = 4
	maxRequestItems = 64
)

// ParseRequestedEvents parses an R: value ("" is the empty list).
func ParseRequestedEvents(v string) ([]RequestedEvent, error) {
	return parseEvents(v, true, 0)
}

// ParseSignalRequests parses an S: value ("" is the empty list).
func ParseSignalRequests(v string) ([]RequestedEvent, error) {
	return parseEvents(v, false, 0)
}

func parseEvents(v string, actions bool, depth int) ([]RequestedEvent, error) {
	if len(v) > maxRequestText {
		return nil, fmt.Errorf("request longer than %d characters", maxRequestText)
	}
	items, err := splitTop(v)
	if err != nil {
		return nil, err
	}
	if len(items) > maxRequestItems {
		return nil, fmt.Errorf("more than %d events", maxRequestItems)
	}
	var out []RequestedEvent
	for _, it := range items {
		ev, err := parseEvent(it, actions, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// splitTop splits at the commas outside parentheses and brackets; items
// are trimmed and the empty string gives no item.
func splitTop(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	paren, bracket, start := 0, 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '(':
			paren++
		case ')':
			if paren--; paren < 0 {
				return nil, fmt.Errorf("unbalanced ')' in %q", clip(v))
			}
		case '[':
			if bracket > 0 {
				return nil, fmt.Errorf("nested '[' in %q", clip(v))
			}
			bracket++
		case ']':
			if bracket--; bracket < 0 {
				return nil, fmt.Errorf("unbalanced ']' in %q", clip(v))
			}
		case ',':
			if paren == 0 && bracket == 0 {
				out = append(out, strings.TrimSpace(v[start:i]))
				start = i + 1
			}
		}
	}
	if paren != 0 || bracket != 0 {
		return nil, fmt.Errorf("unbalanced parenthesis or bracket in %q", clip(v))
	}
	out = append(out, strings.TrimSpace(v[start:]))
	for _, it := range out {
		if it == "" {
			return nil, fmt.Errorf("empty item in %q", clip(v))
		}
	}
	return out, nil
}

// groups cuts "name(a)(b)" into "name" and the insides of the groups.
func groups(s string) (string, []string, error) {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return s, nil, nil
	}
	head := strings.TrimSpace(s[:open])
	var gs []string
	rest := s[open:]
	for rest != "" {
		if rest[0] != '(' {
			return "", nil, fmt.Errorf("unexpected %q after a parenthesis in %q", rest[0], clip(s))
		}
		depth := 0
		end := -1
		for i := 0; i < len(rest); i++ {
			if rest[i] == '(' {
				depth++
			} else if rest[i] == ')' {
				if depth--; depth == 0 {
					end = i
					break
				}
			}
		}
		if end < 0 {
			return "", nil, fmt.Errorf("unbalanced parenthesis in %q", clip(s))
		}
		gs = append(gs, rest[1:end])
		rest = strings.TrimLeft(rest[end+1:], " \t")
	}
	return head, gs, nil
}

func parseEventName(s string) (EventName, error) {
	var e EventName
	name := s
	if at := strings.LastIndexByte(name, '@'); at >= 0 && !strings.Contains(name[at:], "]") {
		e.Conn = strings.TrimSpace(name[at+1:])
		name = strings.TrimSpace(name[:at])
		if e.Conn == "" || !isToken(e.Conn) && e.Conn != "$" && e.Conn != "*" {
			return e, fmt.Errorf("bad connection qualifier in %q", clip(s))
		}
	}
	if slash := strings.IndexByte(name, '/'); slash >= 0 {
		e.Pkg = strings.ToUpper(strings.TrimSpace(name[:slash]))
		name = strings.TrimSpace(name[slash+1:])
		if e.Pkg == "" || (!isToken(e.Pkg) && e.Pkg != "*") || strings.ContainsRune(e.Pkg, '/') {
			return e, fmt.Errorf("bad package name in %q", clip(s))
		}
	}
	if name == "" || strings.ContainsAny(name, " \t/@(),") {
		return e, fmt.Errorf("bad event name in %q", clip(s))
	}
	if strings.HasPrefix(name, "[") != strings.HasSuffix(name, "]") || strings.Count(name, "[") > 1 ||
		strings.Count(name, "]") > 1 || (strings.Contains(name, "[") && !strings.HasPrefix(name, "[")) {
		return e, fmt.Errorf("bad event range in %q", clip(s))
	}
	e.Name = name
	return e, nil
}

func parseEvent(s string, withActions bool, depth int) (RequestedEvent, error) {
	head, gs, err := groups(s)
	if err != nil {
		return RequestedEvent{}, err
	}
	name, err := parseEventName(head)
	if err != nil {
		return RequestedEvent{}, err
	}
	ev := RequestedEvent{EventName: name}
	if !withActions {
		switch len(gs) {
		case 0:
		case 1:
			ev.HasParams, ev.Params = true, gs[0]
		default:
			return ev, fmt.Errorf("signal %q: more than one parameter list", clip(s))
		}
		return ev, nil
	}
	switch len(gs) {
	case 0:
		return ev, nil
	case 2:
		ev.HasParams, ev.Params = true, gs[1]
	case 1:
	default:
		return ev, fmt.Errorf("event %q: too many parenthesized lists", clip(s))
	}
	items, err := splitTop(gs[0])
	if err != nil {
		return ev, err
	}
	if len(items) == 0 {
		return ev, fmt.Errorf("event %q: empty action list", clip(s))
	}
	for _, it := range items {
		a, err := parseAction(it, depth)
		if err != nil {
			return ev, err
		}
		ev.Actions = append(ev.Actions, a)
	}
	return ev, nil
}

func parseAction(s string, depth int) (Action, error) {
	head, gs, err := groups(s)
	if err != nil {
		return Action{}, err
	}
	a := Action{Name: strings.ToUpper(head)}
	if !isToken(a.Name) {
		return a, fmt.Errorf("bad action %q", clip(s))
	}
	if a.Name != "E" {
		if len(gs) > 0 {
			return a, fmt.Errorf("action %q takes no parameters", clip(s))
		}
		return a, nil
	}
	if len(gs) != 1 {
		return a, fmt.Errorf("embedded request %q: one parenthesized list expected", clip(s))
	}
	if depth >= maxEmbedDepth {
		return a, fmt.Errorf("embedded requests nested deeper than %d", maxEmbedDepth)
	}
	emb, err := parseEmbedded(gs[0], depth+1)
	if err != nil {
		return a, err
	}
	a.Embedded = emb
	return a, nil
}

func parseEmbedded(s string, depth int) (*EmbeddedRequest, error) {
	items, err := splitTop(s)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("empty embedded request")
	}
	e := &EmbeddedRequest{}
	for _, it := range items {
		head, gs, err := groups(it)
		if err != nil {
			return nil, err
		}
		if len(gs) != 1 {
			return nil, fmt.Errorf("embedded request item %q", clip(it))
		}
		switch strings.ToUpper(head) {
		case "R":
			if e.HasR {
				return nil, fmt.Errorf("embedded request: R twice")
			}
			if e.R, err = parseEvents(gs[0], true, depth); err != nil {
				return nil, err
			}
			e.HasR = true
		case "S":
			if e.HasS {
				return nil, fmt.Errorf("embedded request: S twice")
			}
			if e.S, err = parseEvents(gs[0], false, depth); err != nil {
				return nil, err
			}
			e.HasS = true
		case "D":
			if e.HasD {
				return nil, fmt.Errorf("embedded request: D twice")
			}
			e.D, e.HasD = strings.TrimSpace(gs[0]), true
		default:
			return nil, fmt.Errorf("embedded request item %q", clip(it))
		}
	}
	return e, nil
}

// FormatRequestedEvents is the canonical text of an R: (or S:) list.
func FormatRequestedEvents(evs []RequestedEvent) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ev.EventName.String())
		if len(ev.Actions) > 0 {
			b.WriteByte('(')
			for j, a := range ev.Actions {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(a.Name)
				if a.Embedded != nil {
					b.WriteByte('(')
					b.WriteString(a.Embedded.String())
					b.WriteByte(')')
				}
			}
			b.WriteByte(')')
		}
		if ev.HasParams { // in R: only after actions (the parser sees to it)
			b.WriteByte('(')
			b.WriteString(ev.Params)
			b.WriteByte(')')
		}
	}
	return b.String()
}

// String is the canonical text of an embedded request.
func (e *EmbeddedRequest) String() string {
	var parts []string
	if e.HasR {
		parts = append(parts, "R("+FormatRequestedEvents(e.R)+")")
	}
	if e.HasS {
		parts = append(parts, "S("+FormatRequestedEvents(e.S)+")")
	}
	if e.HasD {
		parts = append(parts, "D("+e.D+")")
	}
	return strings.Join(parts, ",")
}

// Quarantine is a Q: value (RFC 3435 §2.3.3): what happens to events
// detected between a notification and the next request (process, the
// default, or discard) and whether one request gives one notification
// (step, the default) or many (loop).
type Quarantine struct {
	Discard bool
	Loop    bool
}

// ParseQuarantine reads Q: ("" is the default process,step).
func ParseQuarantine(v string) (Quarantine, error) {
	var q Quarantine
	var seenPD, seenSL bool
	for _, it := range strings.Split(v, ",") {
		it = strings.ToLower(strings.TrimSpace(it))
		switch it {
		case "":
			if strings.TrimSpace(v) != "" {
				return q, fmt.Errorf("empty item in Q: %q", clip(v))
			}
		case "process", "discard":
			if seenPD {
				return q, fmt.Errorf("Q: %q gives process/discard twice", clip(v))
			}
			seenPD, q.Discard = true, it == "discard"
		case "step", "loop":
			if seenSL {
				return q, fmt.Errorf("Q: %q gives step/loop twice", clip(v))
			}
			seenSL, q.Loop = true, it == "loop"
		default:
			return q, fmt.Errorf("unknown quarantine handling %q", clip(it))
		}
	}
	return q, nil
}
