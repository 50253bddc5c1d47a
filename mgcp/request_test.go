package mgcp

import (
	"reflect"
	"testing"
)

func TestParseRequestedEvents(t *testing.T) {
	for in, want := range map[string]string{
		// RFC 3435 §2.3.3 and its examples.
		"L/hu(N), D/[0-9#*T](D)":                      "L/hu(N), D/[0-9#*T](D)",
		"l/hd(E(S(L/dl),R(L/oc,L/hu,D/[0-9#*T](D))))": "L/hd(E(R(L/oc, L/hu, D/[0-9#*T](D)),S(L/dl)))",
		"D/[0-9#*](N)":                                "D/[0-9#*](N)",
		"D/1@17(N,K)":                                 "D/1@17(N,K)",
		"D/x@$(A), d/T@*(n)":                          "D/x@$(A), D/T@*(N)",
		"hu":                                          "hu",
		"L/hu(N)(a=1, b)":                             "L/hu(N)(a=1, b)",
		"D/#(A,E(R(D/[0-9](N)),D((xxxx|*xx))))":       "D/#(A,E(R(D/[0-9](N)),D((xxxx|*xx))))",
		"":                                            "",
		" D/5 ( N ) ":                                 "D/5(N)",
		"D/1(E(R(D/2(E(R(D/3(E(R(D/4(N)))))))))), D/all": "D/1(E(R(D/2(E(R(D/3(E(R(D/4(N)))))))))), D/all",
	} {
		evs, err := ParseRequestedEvents(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := FormatRequestedEvents(evs); got != want {
			t.Errorf("%q: formatted %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{
		"D/1(N", "D/1)N(", "D/[0-9(N)", "D/1(N),", ",D/1", "D/1()", "D/1(N)(x)(y)", "/1", "D/", "D/1@", "D/1(E)",
		"D/1(E(R(D/2)),E)", "D/1(E(X(1)))", "D/1(E(R(D/2),R(D/3)))", "D/1(N(x))", "D/[[1]]",
		"D/1(E(R(D/1(E(R(D/1(E(R(D/1(E(R(D/1(E(R(D/1(N)))))))))))))))", // deeper than maxEmbedDepth
	} {
		if evs, err := ParseRequestedEvents(bad); err == nil {
			t.Errorf("%q parsed as %q", bad, FormatRequestedEvents(evs))
		}
	}
}

func TestParseSignalsAndQuarantine(t *testing.T) {
	sigs, err := ParseSignalRequests("A/ann(http://x/y.wav, 2), L/rg, D/5@12")
	if err != nil || len(sigs) != 3 || sigs[0].Params != "http://x/y.wav, 2" || sigs[2].Conn != "12" {
		t.Fatalf("signals %+v: %v", sigs, err)
	}
	for in, want := range map[string]Quarantine{
		"": {}, "process": {}, "discard": {Discard: true}, "loop": {Loop: true}, "Discard, LOOP": {Discard: true, Loop: true}, "step,process": {},
	} {
		if got, err := ParseQuarantine(in); err != nil || got != want {
			t.Errorf("Q: %q = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"sometimes", "loop,step", "process,discard", "loop,", ","} {
		if _, err := ParseQuarantine(bad); err == nil {
			t.Errorf("Q: %q accepted", bad)
		}
	}
}

// FuzzRequestedEvents: what parses formats to a canonical text that parses
// to the same requests and formats identically; validation never panics.
func FuzzRequestedEvents(f *testing.F) {
	for _, s := range []string{
		"L/hu(N), D/[0-9#*T](D)",
		"L/hd(E(S(L/dl),R(L/oc,L/hu,D/[0-9#*T](D))))",
		"D/1@17(N,K)", "D/x@$(A), D/T@*(N)", "L/hu(N)(a=1, b)", "D/#(A,E(R(D/[0-9](N)),D((xxxx|*xx))))",
		"D/1(E(R(D/2(E(R(D/3(N)))))))", "A/ann(http://x/y.wav, 2), L/rg", "D/[0-9(N)",
	} {
		f.Add(s)
	}
	resolve := func(id string) (string, *Response) { return id, nil }
	f.Fuzz(func(t *testing.T, in string) {
		for _, withActions := range []bool{true, false} {
			evs, err := parseEvents(in, withActions, 0)
			if err != nil {
				continue
			}
			text := FormatRequestedEvents(evs)
			again, err := parseEvents(text, withActions, 0)
			if err != nil {
				t.Fatalf("%q formatted as %q, which does not parse: %v", in, text, err)
			}
			if !reflect.DeepEqual(normalize(evs), normalize(again)) {
				t.Fatalf("%q -> %q: parsed differently:\n%+v\n%+v", in, text, evs, again)
			}
			if FormatRequestedEvents(again) != text {
				t.Fatalf("%q: format not stable", in)
			}
			if withActions {
				_, _ = compileEvents(evs, resolve)
			} else {
				_ = checkSignals(evs, resolve)
			}
		}
	})
}

// normalize drops what formatting canonicalizes (nil vs empty lists).
func normalize(evs []RequestedEvent) []RequestedEvent {
	if len(evs) == 0 {
		return nil
	}
	out := make([]RequestedEvent, len(evs))
	for i, e := range evs {
		out[i] = e
		out[i].Actions = nil
		if len(e.Actions) > 0 {
			out[i].Actions = append([]Action(nil), e.Actions...)
		}
		for j, a := range e.Actions {
			if a.Embedded != nil {
				emb := *a.Embedded
				emb.R, emb.S = normalize(emb.R), normalize(emb.S)
				out[i].Actions[j].Embedded = &emb
			}
		}
	}
	return out
}
