package mgcp

import (
	"strings"
	"testing"
)

// The digit map of RFC 3435 §2.1.5: local operator (0), long distance
// operator (00), local extensions ([1-7]xxx), local numbers (8xxxxxxx),
// #xxxxxxx, star services (*xx), long distance (91xxxxxxxxxx),
// international (9011 + a variable number of digits).
const rfcMap = "(0T|00T|[1-7]xxx|8xxxxxxx|#xxxxxxx|*xx|91xxxxxxxxxx|9011x.T)"

func TestDigitMapMatch(t *testing.T) {
	for _, c := range []struct {
		dm, dialled string
		want        dmOutcome
	}{
		// RFC 3435's example map.
		{rfcMap, "", dmPartialLong},
		{rfcMap, "0", dmPartialShort}, // 0T with T, or 00T with another 0
		{rfcMap, "0T", dmMatch},
		{rfcMap, "00", dmNeedT},
		{rfcMap, "00T", dmMatch},
		{rfcMap, "01", dmMismatch},
		{rfcMap, "1", dmPartialLong},
		{rfcMap, "123", dmPartialLong},
		{rfcMap, "1234", dmMatch},
		{rfcMap, "7999", dmMatch},
		{rfcMap, "8123", dmPartialLong},
		{rfcMap, "81234567", dmMatch},
		{rfcMap, "812345678", dmMismatch},
		{rfcMap, "#1234567", dmMatch},
		{rfcMap, "*6", dmPartialLong},
		{rfcMap, "*69", dmMatch},
		{rfcMap, "9", dmPartialLong},
		{rfcMap, "91", dmPartialLong},
		{rfcMap, "912345678901", dmMatch},
		{rfcMap, "901", dmPartialLong},
		{rfcMap, "9011", dmPartialShort}, // x. may be empty: T would end it, digits may follow
		{rfcMap, "9011T", dmMatch},
		{rfcMap, "901133123456789", dmPartialShort},
		{rfcMap, "901133123456789T", dmMatch},
		{rfcMap, "A", dmMismatch},
		{rfcMap, "T", dmMismatch},
		// The map of the example.
		{"(xxxx|*xx)", "1234", dmMatch},
		{"(xxxx|*xx)", "*12", dmMatch},
		{"(xxxx|*xx)", "*1", dmPartialLong},
		{"(xxxx|*xx)", "12", dmPartialLong},
		{"(xxxx|*xx)", "#", dmMismatch},
		{"(xxxx|*xx)", "12345", dmMismatch},
		// One pattern a prefix of another: the short timer decides.
		{"(12|123x)", "12", dmPartialShort},
		{"(12|123x)", "123", dmPartialLong},
		{"(12|123x)", "1234", dmMatch},
		// Without parentheses; ranges with letters; x inside a range.
		{"[2-4#]x", "#5", dmMatch},
		{"[2-4#]x", "55", dmMismatch},
		{"[x*]", "*", dmMatch},
		{"[x*]", "7", dmMatch},
		{"[AD]", "d", dmMatch},
		{"x.", "", dmPartialShort},
		{"x.", "0000", dmPartialShort},
		{"x.#", "123#", dmMatch},
	} {
		dm, err := ParseDigitMap(c.dm)
		if err != nil {
			t.Fatalf("%s: %v", c.dm, err)
		}
		if got := dm.Match(c.dialled); got != c.want {
			t.Errorf("%s dialling %q: %v, want %v", c.dm, c.dialled, got, c.want)
		}
	}
}

func TestDigitMapParse(t *testing.T) {
	for in, want := range map[string]string{
		rfcMap:                  strings.Replace(rfcMap, "[1-7]", "[1234567]", 1),
		"xxxx":                  "(xxxx)",
		" ( xxxx | *xx ) ":      "(xxxx|*xx)",
		"[0-9]":                 "(x)",
		"[0-35-9]":              "([012356789])",
		"[#*]x.":                "([*#]x.)",
		"[T0-2]":                "([012T])",
		"abcd":                  "(ABCD)",
		"X":                     "(x)",
		"9011x.T":               "(9011x.T)",
		"[0123456789*#ABCDT]":   "([0123456789*#ABCDT])",
		"(1|2|3|4|5|6|7|8|9|0)": "(1|2|3|4|5|6|7|8|9|0)",
	} {
		dm, err := ParseDigitMap(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		// Ranges print as the symbols they hold, in symbol order.
		got := dm.String()
		if got != want {
			t.Errorf("%q: String() = %q, want %q", in, got, want)
		}
		again, err := ParseDigitMap(got)
		if err != nil || again.String() != got {
			t.Errorf("%q: canonical form %q does not parse back to itself (%v)", in, got, err)
		}
	}
	for _, bad := range []string{
		"", "()", "(12", "12)", "[", "[]", "[12", "1..", ".1", "[9-1]", "1|", "|1", "E", "1(2)", "12|*x|", "[1-]", "x" + strings.Repeat("x", 63),
	} {
		if dm, err := ParseDigitMap(bad); err == nil {
			t.Errorf("%q parsed as %s", bad, dm)
		}
	}
}

// FuzzDigitMap: whatever parses prints in a canonical form that parses back
// to the same map; matching any string never panics and agrees between the
// two.
func FuzzDigitMap(f *testing.F) {
	for _, s := range []string{rfcMap, "(xxxx|*xx)", "[0-9#*T]", "x.", "(12|123x)", "[2-4A]x.T", "1..", "([)"} {
		f.Add(s, "1234T")
	}
	f.Fuzz(func(t *testing.T, m, dialled string) {
		dm, err := ParseDigitMap(m)
		if err != nil {
			return
		}
		canon := dm.String()
		again, err := ParseDigitMap(canon)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", m, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("%q: canonical form not stable: %q then %q", m, canon, again.String())
		}
		if len(dialled) > 64 {
			dialled = dialled[:64]
		}
		if a, b := dm.Match(dialled), again.Match(dialled); a != b {
			t.Fatalf("%q and its canonical form %q disagree on %q: %v vs %v", m, canon, dialled, a, b)
		}
	})
}
