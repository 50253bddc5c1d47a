package mgcp

import (
	"fmt"
	"strings"
	"time"
)

// Digit maps (RFC 3435 §2.1.5, syntax in its Appendix A):
//
//	DigitMap      = DigitString / "(" DigitStringList ")"
//	DigitStringList = DigitString 0*( "|" DigitString )
//	DigitString   = 1*(DigitPosition ["."])
//	DigitPosition = DigitMapLetter / DigitMapRange
//	DigitMapLetter = DIGIT / "#" / "*" / "A" / "B" / "C" / "D" / "T"
//	DigitMapRange = "x" / "[" 1*DigitLetter "]"
//	DigitLetter   = *((DIGIT "-" DIGIT) / DigitMapLetter)
//
// "x" is any digit 0-9, "." repeats the position before it zero or more
// times and "T" is the expiry of the interdigit timer, an event like a
// digit. This file is pure: it parses, formats and matches; notify.go runs
// the timers.

// Symbols are numbered as RFC 4733 numbers DTMF events (0-9, 10 '*',
// 11 '#', 12-15 A-D), so a session.Event's Digit is a symbol as it is;
// symT is the timer.
const (
	symT     = 16
	symAOC   = 17 // A/oc: an announcement played out (signals: not in digit maps)
	symAOF   = 18 // A/of: an announcement failed
	symGOC   = 19 // G/oc: a G time-out tone ran its time
	symGOF   = 20 // G/of: a G tone failed
	numSyms  = 17
	digitSet = symSet(1<<10 - 1) // x: 0-9
	allDTMF  = symSet(1<<16 - 1) // 0-9 * # A-D
)

// symSet is a set of symbols, bit n for symbol n.
type symSet uint32

func (s symSet) has(sym int) bool { return s&(1<<sym) != 0 }

const symChars = "0123456789*#ABCDT"

// symChar is the character of a symbol ('0'..'9', '*', '#', 'A'..'D', 'T').
func symChar(sym int) byte { return symChars[sym] }

// symOf maps a digit-map letter to its symbol; x and ranges are not letters.
func symOf(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c == '*':
		return 10, true
	case c == '#':
		return 11, true
	case c >= 'A' && c <= 'D':
		return int(c-'A') + 12, true
	case c >= 'a' && c <= 'd':
		return int(c-'a') + 12, true
	case c == 'T' || c == 't':
		return symT, true
	}
	return 0, false
}

// Digit-map timers (RFC 3435 §2.1.5 and the D/T timer of RFC 3660): the
// start timer runs before the first digit, the short timer when the digits
// so far already match (or would match with T next) but a longer pattern
// may still match, the long timer when at least one more digit is needed.
// They apply only when T is among the requested events.
type digitTimers struct {
	start, short, long time.Duration
}

var defaultDigitTimers = digitTimers{start: 16 * time.Second, short: 4 * time.Second, long: 16 * time.Second}

// dmElem is one position of a pattern: the symbols it takes and whether
// it may repeat ("." after it).
type dmElem struct {
	set    symSet
	repeat bool
}

// DigitMap is a parsed digit map: alternatives of patterns.
type DigitMap struct {
	patterns [][]dmElem
}

// maxDigitMap bounds a digit map's text (and so its patterns).
const maxDigitMap = 2048

// ParseDigitMap parses a digit map, with or without its parentheses.
func ParseDigitMap(s string) (*DigitMap, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxDigitMap {
		return nil, fmt.Errorf("digit map longer than %d characters", maxDigitMap)
	}
	if strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") || len(s) < 2 {
			return nil, fmt.Errorf("digit map %q: unbalanced parenthesis", clip(s))
		}
		s = s[1 : len(s)-1]
	}
	dm := &DigitMap{}
	for _, alt := range strings.Split(s, "|") {
		p, err := parsePattern(strings.TrimSpace(alt))
		if err != nil {
			return nil, err
		}
		dm.patterns = append(dm.patterns, p)
	}
	return dm, nil
}

func parsePattern(s string) ([]dmElem, error) {
	if s == "" {
		return nil, fmt.Errorf("empty digit string in digit map")
	}
	var p []dmElem
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			continue
		case c == '.':
			if len(p) == 0 || p[len(p)-1].repeat {
				return nil, fmt.Errorf("digit map %q: '.' must follow a digit position", clip(s))
			}
			p[len(p)-1].repeat = true
		case c == 'x' || c == 'X':
			p = append(p, dmElem{set: digitSet})
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("digit map %q: '[' without ']'", clip(s))
			}
			set, err := parseRange(s[i+1 : i+end])
			if err != nil {
				return nil, err
			}
			p = append(p, dmElem{set: set})
			i += end
		default:
			sym, ok := symOf(c)
			if !ok {
				return nil, fmt.Errorf("digit map %q: unexpected %q", clip(s), c)
			}
			p = append(p, dmElem{set: 1 << sym})
		}
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("empty digit string in digit map")
	}
	if len(p) > maxPattern {
		return nil, fmt.Errorf("digit map pattern longer than %d positions", maxPattern)
	}
	return p, nil
}

// parseRange reads the inside of [...]: digits, d-d ranges, letters, x.
func parseRange(s string) (symSet, error) {
	var set symSet
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
		case c == 'x' || c == 'X':
			set |= digitSet
		case c >= '0' && c <= '9' && i+2 < len(s) && s[i+1] == '-':
			hi := s[i+2]
			if hi < c || hi > '9' {
				return 0, fmt.Errorf("digit map range %c-%c", c, hi)
			}
			for d := c; d <= hi; d++ {
				set |= 1 << (d - '0')
			}
			i += 2
		default:
			sym, ok := symOf(c)
			if !ok {
				return 0, fmt.Errorf("digit map range: unexpected %q", c)
			}
			set |= 1 << sym
		}
	}
	if set == 0 {
		return 0, fmt.Errorf("empty digit map range")
	}
	return set, nil
}

// String is the canonical form: "(p1|p2)", ranges as [..] in symbol order
// ("x" for exactly 0-9), letters upper case.
func (dm *DigitMap) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range dm.patterns {
		if i > 0 {
			b.WriteByte('|')
		}
		for _, e := range p {
			switch {
			case e.set == digitSet:
				b.WriteByte('x')
			case e.set&(e.set-1) == 0: // one symbol
				for sym := 0; sym < numSyms; sym++ {
					if e.set.has(sym) {
						b.WriteByte(symChar(sym))
					}
				}
			default:
				b.WriteByte('[')
				for sym := 0; sym < numSyms; sym++ {
					if e.set.has(sym) {
						b.WriteByte(symChar(sym))
					}
				}
				b.WriteByte(']')
			}
			if e.repeat {
				b.WriteByte('.')
			}
		}
	}
	b.WriteByte(')')
	return b.String()
}

// dmState is where matching stands in each pattern: a bit set of
// positions (bit i: the next symbol is matched against element i; bit
// len(p): the pattern is complete), so a pattern has at most maxPattern
// positions (ParseDigitMap refuses longer ones).
type dmState []uint64

// maxPattern is the longest pattern a DigitMap matches (positions fit a uint64).
const maxPattern = 63

// start is the state before any symbol.
func (dm *DigitMap) start() dmState {
	st := make(dmState, len(dm.patterns))
	for i, p := range dm.patterns {
		st[i] = closure(p, 1)
	}
	return st
}

// closure adds the positions reachable by skipping repeatable elements.
func closure(p []dmElem, set uint64) uint64 {
	for i := range p {
		if set&(1<<i) != 0 && p[i].repeat {
			set |= 1 << (i + 1)
		}
	}
	return set
}

// step advances every pattern by one symbol.
func (dm *DigitMap) step(st dmState, sym int) dmState {
	out := make(dmState, len(st))
	for i, p := range dm.patterns {
		var next uint64
		for j := range p {
			if st[i]&(1<<j) == 0 || !p[j].set.has(sym) {
				continue
			}
			if p[j].repeat {
				next |= 1 << j
			} else {
				next |= 1 << (j + 1)
			}
		}
		out[i] = closure(p, next)
	}
	return out
}

// dmOutcome is what a dial string is to a digit map.
type dmOutcome int

const (
	dmMismatch     dmOutcome = iota // no pattern can match any more: report now
	dmMatch                         // complete, and nothing longer can match: report now
	dmPartialLong                   // at least one more digit needed: long timer
	dmPartialShort                  // complete (or complete with T) but a longer match is possible: short timer
	dmNeedT                         // only T completes it: short timer
)

func (o dmOutcome) String() string {
	return [...]string{"mismatch", "match", "partial-long", "partial-short", "need-T"}[o]
}

// classify says what the state means: complete now, complete with T, or
// able to take more digits.
func (dm *DigitMap) classify(st dmState) dmOutcome {
	var exact, withT, more bool
	tst := dm.step(st, symT)
	for i, p := range dm.patterns {
		if st[i]&(1<<len(p)) != 0 {
			exact = true
		}
		if tst[i]&(1<<len(p)) != 0 {
			withT = true
		}
		for j := range p {
			if st[i]&(1<<j) != 0 && p[j].set&allDTMF != 0 {
				more = true
			}
		}
	}
	switch {
	case exact && !more && !withT:
		return dmMatch
	case (exact || withT) && more:
		return dmPartialShort
	case exact:
		return dmPartialShort // complete, and T would complete another pattern
	case withT:
		return dmNeedT
	case more:
		return dmPartialLong
	}
	return dmMismatch
}

// Match classifies a whole dial string (symbols in symChars, "T" for the
// timer) against the map: for tests and the table of RFC 3435 examples.
func (dm *DigitMap) Match(dialled string) dmOutcome {
	st := dm.start()
	for i := 0; i < len(dialled); i++ {
		sym, ok := symOf(dialled[i])
		if !ok {
			return dmMismatch
		}
		st = dm.step(st, sym)
	}
	return dm.classify(st)
}

// complete reports whether the state is a complete match of some pattern.
func (dm *DigitMap) complete(st dmState) bool {
	for i, p := range dm.patterns {
		if st[i]&(1<<len(p)) != 0 {
			return true
		}
	}
	return false
}
