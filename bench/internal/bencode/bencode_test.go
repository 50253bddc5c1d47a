package bencode

import (
	"errors"
	"reflect"
	"testing"
)

func TestMarshal(t *testing.T) {
	tests := map[string]struct {
		in   any
		want string
	}{
		"string":       {"spam", "4:spam"},
		"empty string": {"", "0:"},
		"bytes":        {[]byte("ab"), "2:ab"},
		"int":          {42, "i42e"},
		"negative":     {int64(-3), "i-3e"},
		"zero":         {0, "i0e"},
		"list":         {[]any{"spam", 7}, "l4:spami7ee"},
		"strings":      {[]string{"origin", "session-connection"}, "l6:origin18:session-connectione"},
		"dict sorted":  {map[string]any{"sdp": "x", "call-id": "c1", "command": "offer"}, "d7:call-id2:c17:command5:offer3:sdp1:xe"},
		"nested": {map[string]any{"replace": []string{"origin"}, "flags": []any{}},
			"d5:flagsle7:replacel6:originee"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Marshal = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMarshalUnsupported(t *testing.T) {
	if _, err := Marshal(map[string]any{"x": 1.5}); !errors.Is(err, ErrType) {
		t.Fatalf("err = %v, want ErrType", err)
	}
}

func TestUnmarshal(t *testing.T) {
	tests := map[string]struct {
		in   string
		want any
	}{
		"string":   {"4:spam", "spam"},
		"int":      {"i-42e", int64(-42)},
		"list":     {"l4:spami7ee", []any{"spam", int64(7)}},
		"empty":    {"le", []any{}},
		"response": {"d6:result2:ok3:sdp5:v=0\r\ne", map[string]any{"result": "ok", "sdp": "v=0\r\n"}},
		"binary":   {"3:\x00:e", "\x00:e"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Unmarshal([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Unmarshal = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, in := range []string{
		"", "i", "ie", "i-e", "i-0e", "i03e", "i1x2e", "i99999999999999999999e",
		"5:abc", "-1:a", "01:a", ":a", "x", "l", "li1e", "d", "di1ei2ee", "d1:a", "4:spamX",
		"d3:key", string(make([]byte, 0)) + "l" + string(repeat('l', 100)) + string(repeat('e', 101)),
	} {
		if v, err := Unmarshal([]byte(in)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Unmarshal(%q) = %#v, %v; want ErrSyntax", in, v, err)
		}
	}
}

func repeat(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	in := map[string]any{
		"command": "answer", "call-id": "bench-17", "from-tag": "a17", "to-tag": "b17",
		"sdp":     "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"replace": []any{"origin", "session-connection"},
		"n":       int64(12345678901),
		"nested":  map[string]any{"l": []any{int64(1), "two", []any{}}},
	}
	enc, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %#v, want %#v", out, in)
	}
}

// FuzzRoundTrip: whatever decodes must encode to a form that decodes to the same value.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"4:spam", "i-42e", "l4:spami7ee", "d6:result2:ok3:sdp3:v=0e", "de"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := Unmarshal(in)
		if err != nil {
			return
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", v, err)
		}
		v2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("Unmarshal(%q): %v", enc, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip %#v != %#v", v, v2)
		}
	})
}
