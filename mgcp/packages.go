package mgcp

import (
	"strings"
)

// Event packages (RFC 3660). The gateway detects the DTMF package's
// digits and its timer T on every connection of an endpoint; the other
// packages RFC 3660 defines for these endpoints are known by name so that
// a request for them gets the precise refusal (codes.go):
//
//   - a package RFC 3660 does not define for us: 518;
//   - an event or signal the package does not define: 522;
//   - an event the package defines that these virtual endpoints cannot
//     detect (L/hd: they have no hook; G/ft: no fax here): 512;
//   - the DTMF package's digit signals (D/5, D/#) are sent by the session
//     table's SendDigits, the announcement package's A/ann is played by
//     its Play and the G tones rt, it and cf by its PlayTone (signals.go),
//     from RQNT, CRCX and MDCX; inside an embedded E(S: ...) and on DLCX
//     they are 513; A/oc, A/of, G/oc and G/of report a time-out signal's
//     end;
//   - every other signal the packages define (G/cg, G/pat, D/DO, L/*):
//     513: no such generator here yet.
//
// A name without a package is in the DTMF package.
type pkgDef struct {
	events, signals map[string]bool // lower case
}

func nameSet(names string) map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(names) {
		m[strings.ToLower(n)] = true
	}
	return m
}

var packageDefs = map[string]pkgDef{
	// RFC 3660 §2.3: DTMF.
	"D": {
		events:  nameSet("0 1 2 3 4 5 6 7 8 9 * # A B C D T X L oc of"),
		signals: nameSet("0 1 2 3 4 5 6 7 8 9 * # A B C D DD DO"),
	},
	// RFC 3660 §2.1: generic media.
	"G": {
		events:  nameSet("ft ld mt oc of"),
		signals: nameSet("cf cg it pat pt rbk rt"),
	},
	// RFC 3660 §2.2: line.
	"L": {
		events:  nameSet("hd hf hu oc of"),
		signals: nameSet("adsi bz ci dl e lsa mwi nbz osi ot p r0 r1 r2 r3 r4 r5 r6 r7 rg ro rs s sit sl v vmwi wt wt1 wt2 wt3 wt4 x y z"),
	},
	// RFC 3660 §2.7: announcement server.
	"A": {
		events:  nameSet("oc of"),
		signals: nameSet("ann"),
	},
}

// dtmfEvents parses a DTMF event name: a digit, T, X (any of 0-9), "all",
// or a range [..] of those (digit-digit ranges allowed). ok is false when
// the name is not a digit event (it may still be another D event).
func dtmfEvents(name string) (symSet, bool) {
	if strings.EqualFold(name, "all") {
		return allDTMF | 1<<symT, true
	}
	if len(name) == 1 {
		if name == "x" || name == "X" {
			return digitSet, true
		}
		if sym, ok := symOf(name[0]); ok {
			return 1 << sym, true
		}
		return 0, false
	}
	if len(name) >= 3 && name[0] == '[' && name[len(name)-1] == ']' {
		set, err := parseRange(name[1 : len(name)-1])
		return set, err == nil
	}
	return 0, false
}

// eventSymbols resolves a requested event to the symbols it covers; a
// non-zero code refuses it (518, 522, 512).
func eventSymbols(e EventName) (symSet, int) {
	pkg := e.Pkg
	if pkg == "" {
		pkg = "D"
	}
	def, ok := packageDefs[pkg]
	if !ok {
		return 0, codeUnsupportedPackage
	}
	if pkg == "D" {
		if set, ok := dtmfEvents(e.Name); ok {
			return set, 0
		}
	}
	if pkg == "A" || pkg == "G" {
		off := 0
		if pkg == "G" {
			off = symGOC - symAOC
		}
		switch strings.ToLower(e.Name) {
		case "oc":
			return 1 << (symAOC + off), 0
		case "of":
			return 1 << (symAOF + off), 0
		}
	}
	if def.events[strings.ToLower(e.Name)] || strings.EqualFold(e.Name, "all") {
		return 0, codeCannotDetect
	}
	return 0, codeNoSuchEvent
}

// signalCode is the answer to a signal request: 518 or 522 for names RFC
// 3660 does not define, else 513 (see above).
func signalCode(e EventName) int {
	pkg := e.Pkg
	if pkg == "" {
		pkg = "D"
	}
	def, ok := packageDefs[pkg]
	if !ok {
		return codeUnsupportedPackage
	}
	if !def.signals[strings.ToLower(e.Name)] {
		return codeNoSuchEvent
	}
	return codeCannotSignal
}
