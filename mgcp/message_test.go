package mgcp

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := map[string]struct {
		in   string
		want *Command
		err  bool
	}{
		"crlf with sdp": {
			in: "CRCX 1 rtpbridge/1@mgw MGCP 1.0\r\nC: abc\r\nm: sendrecv\r\nL: p:20, a:PCMU\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n",
			want: &Command{Verb: "CRCX", TransID: 1, Endpoint: "rtpbridge/1@mgw", Version: "1.0",
				Params: Params{{"C", "abc"}, {"M", "sendrecv"}, {"L", "p:20, a:PCMU"}},
				SDP:    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"},
		},
		"lf, lower-case verb, profile": {
			in:   "auep 999999999 *@mgw mgcp 1.0 NCS 1.0\nf: A, I\n",
			want: &Command{Verb: "AUEP", TransID: 999999999, Endpoint: "*@mgw", Version: "1.0", Profile: "NCS 1.0", Params: Params{{"F", "A, I"}}},
		},
		"empty value":         {in: "DLCX 7 cnf/1@mgw MGCP 1.0\nK:\n", want: &Command{Verb: "DLCX", TransID: 7, Endpoint: "cnf/1@mgw", Version: "1.0", Params: Params{{"K", ""}}}},
		"too few fields":      {in: "CRCX 1 cnf/1@mgw\n", err: true},
		"transaction id zero": {in: "CRCX 0 cnf/1@mgw MGCP 1.0\n", err: true},
		"transaction id long": {in: "CRCX 1234567890 cnf/1@mgw MGCP 1.0\n", err: true},
		"not MGCP":            {in: "CRCX 1 cnf/1@mgw SIP 2.0\n", err: true},
		"param without colon": {in: "CRCX 1 cnf/1@mgw MGCP 1.0\nC abc\n", err: true},
		"empty":               {in: "\r\n\r\n", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCommand([]byte(tc.in))
			if tc.err {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want *ProtocolError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestProtocolErrorKeepsTransID(t *testing.T) {
	_, err := ParseCommand([]byte("MDCX 42 cnf/1@mgw MGCP 1.0\nbroken line\n"))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.TransID != 42 || pe.Line != 2 {
		t.Fatalf("err = %#v", err)
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse([]byte("250 17 Connection deleted\r\nP: PS=1, OS=160\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{Code: 250, TransID: 17, Comment: "Connection deleted", Params: Params{{"P", "PS=1, OS=160"}}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %#v", r)
	}
	if r, err := ParseResponse([]byte("000 5\n")); err != nil || r.Code != 0 || r.TransID != 5 {
		t.Fatalf("ack: %v %#v", err, r)
	}
	if got := string((&Response{Code: 0, TransID: 5}).Marshal()); got != "000 5\r\n" {
		t.Fatalf("ack formats as %q", got)
	}
	for _, bad := range []string{"20 1 OK\n", "200 x OK\n", "200\n"} {
		if _, err := ParseResponse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSplitPiggyback(t *testing.T) {
	dg := "000 4\r\n.\r\nCRCX 5 cnf/$@mgw MGCP 1.0\nC: 1\n\nv=0\n.\nDLCX 6 cnf/1@mgw MGCP 1.0\n.\n"
	parts := Split([]byte(dg))
	if len(parts) != 3 {
		t.Fatalf("%d parts: %q", len(parts), parts)
	}
	if !IsResponse(parts[0]) || IsResponse(parts[1]) || IsResponse(parts[2]) {
		t.Fatalf("IsResponse wrong on %q", parts)
	}
	c, err := ParseCommand(parts[1])
	if err != nil || c.SDP != "v=0\r\n" {
		t.Fatalf("%v %#v", err, c)
	}
	joined := Piggyback((&Response{Code: 200, TransID: 5}).Marshal(), (&Response{Code: 250, TransID: 6}).Marshal())
	if string(joined) != "200 5\r\n.\r\n250 6\r\n" {
		t.Fatalf("Piggyback = %q", joined)
	}
}

func TestParamsCaseInsensitive(t *testing.T) {
	c, err := ParseCommand([]byte("CRCX 1 cnf/1@mgw MGCP 1.0\nc: x\nx-Foo: y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Params.Value("C") != "x" || c.Params.Value("X-FOO") != "y" || c.Params.Value("x-foo") != "y" {
		t.Fatalf("%#v", c.Params)
	}
}

// roundTrip checks that every piece of data that parses formats to a
// message that parses to the same value, and formats byte-identically.
func roundTrip(t *testing.T, data []byte) {
	for _, piece := range Split(data) {
		if IsResponse(piece) {
			r, err := ParseResponse(piece)
			if err != nil {
				continue
			}
			out := r.Marshal()
			if p := Split(out); len(p) != 1 {
				t.Fatalf("formatted response splits into %d: %q", len(p), out)
			}
			r2, err := ParseResponse(out)
			if err != nil {
				t.Fatalf("reparse of %q: %v", out, err)
			}
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("response round trip:\n%#v\n%#v", r, r2)
			}
			if out2 := r2.Marshal(); string(out2) != string(out) {
				t.Fatalf("format not stable: %q vs %q", out, out2)
			}
			continue
		}
		c, err := ParseCommand(piece)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ProtocolError", err)
			}
			continue
		}
		out := c.Marshal()
		if p := Split(out); len(p) != 1 {
			t.Fatalf("formatted command splits into %d: %q", len(p), out)
		}
		c2, err := ParseCommand(out)
		if err != nil {
			t.Fatalf("reparse of %q: %v", out, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("command round trip:\n%#v\n%#v", c, c2)
		}
		if out2 := c2.Marshal(); string(out2) != string(out) {
			t.Fatalf("format not stable: %q vs %q", out, out2)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{
		"CRCX 1 rtpbridge/$@mgw MGCP 1.0\r\nC: 1\r\nM: sendrecv\r\nL: p:20, a:PCMU\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n",
		"DLCX 2 cnf/7@mgw MGCP 1.0\nC: 1\nI: 3\nK: 1-5, 7\n",
		"250 2 OK\r\nP: PS=0, OS=0\r\n",
		"000 9\r\n.\r\nAUEP 10 *@mgw MGCP 1.0\r\nF: A\r\n",
		"200 3\n\nv=0\n\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data) })
}
