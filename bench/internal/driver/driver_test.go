package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/bench/internal/bencode"
)

func TestParseMGCPResponse(t *testing.T) {
	r, err := ParseMGCPResponse([]byte("200 1204 OK\r\nI: 1A2B\r\nz: rtpbridge/3@mgw\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40002 RTP/AVP 0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 200 || r.TID != 1204 || r.Comment != "OK" || r.Param("i") != "1A2B" || r.Param("Z") != "rtpbridge/3@mgw" {
		t.Errorf("got %+v", r)
	}
	if a, err := MediaAddr(r.SDP); err != nil || a != netip.MustParseAddrPort("127.0.0.1:40002") {
		t.Errorf("MediaAddr = %v, %v", a, err)
	}
	for _, bad := range []string{"", "OK 12", "2000 1", "200 x", "200 1\nnocolon\n"} {
		if _, err := ParseMGCPResponse([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestMediaAddr(t *testing.T) {
	tests := map[string]struct {
		sdp  string
		want string
	}{
		"session c":       {"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n", "10.0.0.1:4000"},
		"media c wins":    {"c=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\nc=IN IP4 127.0.0.2\n", "127.0.0.2:4000"},
		"video first":     {"c=IN IP4 10.0.0.1\nm=video 5000 RTP/AVP 96\nc=IN IP4 1.1.1.1\nm=audio 4000 RTP/AVP 0\n", "10.0.0.1:4000"},
		"later media c":   {"c=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\nm=video 5000 RTP/AVP 96\nc=IN IP4 1.1.1.1\n", "10.0.0.1:4000"},
		"port count form": {"c=IN IP4 10.0.0.1\r\nm=audio 4000/2 RTP/AVP 0\r\n", "10.0.0.1:4000"},
	}
	for name, tc := range tests {
		got, err := MediaAddr(tc.sdp)
		if err != nil || got.String() != tc.want {
			t.Errorf("%s: %v, %v; want %s", name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "c=IN IP4 1.2.3.4\n", "m=audio 4000 RTP/AVP 0\n", "c=IN IP4 x\nm=audio 1 RTP/AVP 0\n", "c=IN\nm=audio 1 RTP/AVP 0\n", "c=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 0\n"} {
		if _, err := MediaAddr(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	if a, err := MediaAddr(SDP(netip.MustParseAddrPort("127.0.0.1:59001"), 3)); err != nil || a.Port() != 59001 {
		t.Errorf("own SDP: %v %v", a, err)
	}
}

// fakeMGW answers like osmo-mgw's rtpbridge: the first CRCX on the wildcard
// returns Z:, both return SDP with a port; DLCX returns 250. It drops the
// first copy of every DLCX to exercise retransmission.
func fakeMGW(t *testing.T) (addr string, cmds func() []string) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var mu sync.Mutex // guards seen
	var seen []string
	dropped := map[string]bool{}
	go func() {
		buf := make([]byte, 4096)
		port := 40000
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			f := strings.Fields(line)
			mu.Lock()
			seen = append(seen, f[0]+" "+f[2])
			mu.Unlock()
			var resp string
			switch f[0] {
			case "CRCX":
				port += 2
				resp = fmt.Sprintf("200 %s OK\r\nI: %d\r\n", f[1], port)
				if strings.Contains(f[2], "*") {
					resp += "Z: rtpbridge/7@mgw\r\n"
				}
				resp += fmt.Sprintf("\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio %d RTP/AVP 0\r\n", port)
			case "DLCX":
				if !dropped[f[1]] {
					dropped[f[1]] = true
					continue
				}
				resp = "250 " + f[1] + " OK\r\n"
			default:
				resp = "504 " + f[1] + " unknown\r\n"
			}
			_, _ = conn.WriteToUDP([]byte(resp), from)
		}
	}()
	return conn.LocalAddr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestMGCPDriver(t *testing.T) {
	addr, cmds := fakeMGW(t)
	c, err := DialMGCP("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Timeout = 50 * time.Millisecond
	m := &MGCP{Client: c, Wildcard: "rtpbridge/*@mgw", Prefix: "x"}
	a, b := netip.MustParseAddrPort("127.0.0.1:59001"), netip.MustParseAddrPort("127.0.0.1:59002")
	call, err := m.Setup(context.Background(), 1, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if call.AToB.Port() != 40002 || call.BToA.Port() != 40004 {
		t.Errorf("call = %+v", call)
	}
	if err := m.Teardown(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	want := []string{"CRCX rtpbridge/*@mgw", "CRCX rtpbridge/7@mgw", "DLCX rtpbridge/7@mgw", "DLCX rtpbridge/7@mgw"}
	if got := cmds(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("commands = %v, want %v", got, want)
	}
	if re, _ := c.Stats(); re != 1 {
		t.Errorf("retransmissions = %d, want 1", re)
	}
	if _, err := c.Do(context.Background(), "AUEP", "x@mgw", nil, ""); err != nil {
		t.Fatal(err)
	}
}

func TestMGCPTimeout(t *testing.T) {
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := DialMGCP("127.0.0.1:0", silent.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Timeout, c.Tries = 10*time.Millisecond, 2
	if _, err := c.Do(context.Background(), "AUEP", "x@mgw", nil, ""); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

// fakeNG answers offer/answer/delete like rtpengine: an SDP naming a port.
func fakeNG(t *testing.T) string {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			cookie, d, err := SplitNG(buf[:n])
			if err != nil {
				continue
			}
			reply := map[string]any{"result": "ok"}
			switch d["command"] {
			case "offer":
				reply["sdp"] = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40100 RTP/AVP 0\r\n"
			case "answer":
				if d["to-tag"] == nil {
					reply = map[string]any{"result": "error", "error-reason": "no to-tag"}
					break
				}
				reply["sdp"] = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40200 RTP/AVP 0\r\n"
			case "delete":
			default:
				reply = map[string]any{"result": "error", "error-reason": "Unrecognized command"}
			}
			body, _ := bencode.Marshal(reply)
			_, _ = conn.WriteToUDP(append([]byte(cookie+" "), body...), from)
		}
	}()
	return conn.LocalAddr().String()
}

func TestRTPengineDriver(t *testing.T) {
	c, err := DialNG("127.0.0.1:0", fakeNG(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &RTPengine{Client: c, Prefix: "x"}
	call, err := e.Setup(context.Background(), 5, netip.MustParseAddrPort("127.0.0.1:59001"), netip.MustParseAddrPort("127.0.0.1:59002"))
	if err != nil {
		t.Fatal(err)
	}
	if call.AToB.Port() != 40200 || call.BToA.Port() != 40100 {
		t.Errorf("call = %+v: A must send to the answer's port, B to the offer's", call)
	}
	if err := e.Teardown(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), map[string]any{"command": "bogus"}); err == nil || !strings.Contains(err.Error(), "Unrecognized") {
		t.Errorf("err = %v", err)
	}
}

func TestSplitNG(t *testing.T) {
	for _, bad := range []string{"", "nocookie", " d1:ai1ee", "c1 li1ee", "c1 d1:a"} {
		if _, _, err := SplitNG([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	cookie, d, err := SplitNG([]byte("abc d6:result4:ponge"))
	if err != nil || cookie != "abc" || d["result"] != "pong" {
		t.Errorf("got %q %v %v", cookie, d, err)
	}
}
