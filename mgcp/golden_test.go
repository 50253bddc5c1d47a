package mgcp

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mediagw/mediagw/session"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from the server's answers")

// Golden files are scripts of what a call agent sends and what it receives,
// as text. Sections:
//
//	-- send --                 a datagram from the call agent (lines end in LF)
//	-- send crlf --            the same with CRLF line ends
//	-- send from 127.0.0.2 --  from an address outside mgcp.call_agents
//	-- release <conn> <front> [code] --
//	                           the session table releases a connection on behalf
//	                           of another front (sip, http, system)
//	-- recv --                 a datagram the call agent received (written by -update)
//
// Lines starting with '#' right after a section header are comments. The
// server's lines end in CRLF on the wire (checked) and are shown with LF;
// RTP ports of the gateway (random in 32000-32999) are shown as {port} and
// the call agent's port as {ca_port}.
// Text before the first section is a comment. The RSIP the gateway sends at
// start-up is the first `recv`; the rig acknowledges it.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runGolden(t, f) })
	}
}

type section struct {
	header   string
	comments []string
	body     string
}

var sectionRe = regexp.MustCompile(`^-- (.+) --$`)

func parseScript(text string) (prelude string, secs []section) {
	var cur *section
	var pre []string
	var body []string
	flush := func() {
		if cur != nil {
			cur.body = strings.Join(body, "\n")
			secs = append(secs, *cur)
		}
		body = nil
	}
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if m := sectionRe.FindStringSubmatch(l); m != nil {
			flush()
			cur = &section{header: m[1]}
			continue
		}
		switch {
		case cur == nil:
			pre = append(pre, l)
		case len(body) == 0 && strings.HasPrefix(l, "#"):
			cur.comments = append(cur.comments, l)
		default:
			body = append(body, l)
		}
	}
	flush()
	return strings.Join(pre, "\n"), secs
}

var portRe = regexp.MustCompile(`m=audio (32\d\d\d) `)

// show renders a received datagram for the golden file.
func show(t *testing.T, r *rig, dg string) string {
	if strings.Contains(strings.ReplaceAll(dg, "\r\n", ""), "\n") {
		t.Errorf("datagram has a bare LF line end: %q", dg)
	}
	s := strings.TrimSuffix(strings.ReplaceAll(dg, "\r\n", "\n"), "\n")
	s = strings.ReplaceAll(s, fmt.Sprintf("]:%d", r.ca.LocalAddr().(*net.UDPAddr).Port), "]:{ca_port}")
	return portRe.ReplaceAllString(s, "m=audio {port} ")
}

func runGolden(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	prelude, secs := parseScript(string(raw))
	var opts []rigOption
	for _, l := range strings.Split(prelude, "\n") {
		// "#! resources.rtp 4" limits a resource pool of the table.
		if f := strings.Fields(strings.TrimPrefix(l, "#!")); strings.HasPrefix(l, "#!") && len(f) == 2 {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("directive %q: %v", l, err)
			}
			opts = append(opts, withResource(f[0], n))
		}
	}
	r := newRig(t, opts...)
	var out strings.Builder
	out.WriteString(prelude)
	out.WriteString("\n")
	emit := func(header string, comments []string, body string) {
		out.WriteString("-- " + header + " --\n")
		for _, c := range comments {
			out.WriteString(c + "\n")
		}
		if body != "" {
			out.WriteString(body + "\n")
		}
	}
	emit("recv", nil, show(t, r, r.rsip))
	for _, s := range secs {
		f := strings.Fields(s.header)
		var got []string
		switch {
		case f[0] == "recv":
			continue
		case f[0] == "send":
			dg := s.body + "\n"
			from := r.ca
			if len(f) > 1 && f[1] == "crlf" {
				dg = strings.ReplaceAll(dg, "\n", "\r\n")
			}
			if len(f) > 2 && f[1] == "from" {
				if f[2] != "127.0.0.2" {
					t.Fatalf("%s: only 127.0.0.2 can be an outsider", s.header)
				}
				from = r.outsider
			}
			got = r.exchange(from, dg)
		case f[0] == "release" && len(f) >= 3:
			rel := session.Release{By: session.Front(f[2]), Reason: "golden test"}
			if len(f) > 3 {
				rel.Code, _ = strconv.Atoi(f[3])
			}
			if _, err := r.table.DeleteConnection(f[1], "", rel); err != nil {
				t.Fatalf("%s: %v", s.header, err)
			}
			got = r.drain()
		default:
			t.Fatalf("unknown section %q", s.header)
		}
		emit(s.header, s.comments, s.body)
		for _, dg := range got {
			emit("recv", nil, show(t, r, dg))
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := string(raw); out.String() != want {
		gl, wl := strings.Split(out.String(), "\n"), strings.Split(want, "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s:%d differs (run with -update to rewrite, then review the diff)\n got: %q\nwant: %q", file, i+1, g, w)
			}
		}
	}
}
