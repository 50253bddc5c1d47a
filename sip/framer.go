package sip

import (
	"bytes"
	"strconv"
	"time"
)

// streamFramer follows a SIP stream (TCP) message by message and stops it
// at the first start line that is not SIP, without handing those bytes on.
//
// Why (issue 10, finding 9): sipgo closes a TCP connection as soon as it
// cannot frame the stream, and removes it from its pool at once; requests
// it had read just before the bad bytes are still being dispatched in their
// own goroutines, and a transaction created after the removal finds no
// connection, so their answers are lost (a hostile probe's mixed run: 20 of
// 37 cases unanswered). With the framer, sipgo only ever sees whole
// messages; at bad bytes the connection reads nothing more for
// brokenLinger, then ends as if the peer had closed it, which leaves the
// requests before it time to be answered.
type streamFramer struct {
	state     int
	line      []byte // the start line being read, or the header line
	remaining int    // body bytes still to come
	length    int    // Content-Length of the message being read
	broken    time.Time
}

// brokenLinger is how long a stream stopped at bad bytes stays open.
const brokenLinger = 2 * time.Second

const (
	frameStart   = iota // between messages: CRLF keep-alives, or a start line
	frameLine           // in the start line
	frameHeaders        // in the header section
	frameBody           // in the body
)

// maxStartLine bounds a start line; maxHeaderLine what is kept of a header
// line to read Content-Length.
const (
	maxStartLine  = 4096
	maxHeaderLine = 1024
)

// feed passes the bytes of p that belong to SIP messages to out and reports
// whether the stream broke (the rest of p and everything after is dropped).
func (f *streamFramer) feed(p []byte, out []byte) ([]byte, bool) {
	for i, c := range p {
		switch f.state {
		case frameStart:
			if c == '\r' || c == '\n' {
				out = append(out, c)
				continue
			}
			f.line = append(f.line[:0], c)
			f.state = frameLine
		case frameLine:
			f.line = append(f.line, c)
			if c == '\n' {
				if !validStartLine(f.line) {
					f.broken = time.Now()
					return out, true
				}
				out = append(out, f.line...)
				f.line, f.length, f.state = f.line[:0], 0, frameHeaders
			} else if len(f.line) > maxStartLine {
				f.broken = time.Now()
				return out, true
			}
		case frameHeaders:
			out = append(out, c)
			if c != '\n' {
				if len(f.line) < maxHeaderLine {
					f.line = append(f.line, c)
				}
				continue
			}
			hl := bytes.TrimRight(f.line, "\r")
			f.line = f.line[:0]
			if len(hl) > 0 {
				f.header(hl)
				continue
			}
			if f.length > 0 {
				f.remaining, f.state = f.length, frameBody
			} else {
				f.state = frameStart
			}
		case frameBody:
			n := len(p) - i
			if n > f.remaining {
				n = f.remaining
			}
			out = append(out, p[i:i+n]...)
			f.remaining -= n
			if f.remaining == 0 {
				f.state = frameStart
				out, broke := f.feed(p[i+n:], out)
				return out, broke
			}
			return out, false
		}
	}
	return out, false
}

// header reads Content-Length (or its compact form l) from a header line.
func (f *streamFramer) header(hl []byte) {
	name, value, ok := bytes.Cut(hl, []byte(":"))
	if !ok {
		return
	}
	name = bytes.TrimSpace(name)
	if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(value))); err == nil && n >= 0 {
			f.length = n
		}
	}
}

// validStartLine: "METHOD uri SIP/x" or "SIP/x code reason". The version
// itself is left to the handlers (505).
func validStartLine(l []byte) bool {
	l = bytes.TrimRight(l, "\r\n")
	if len(l) >= 8 && bytes.EqualFold(l[:4], []byte("SIP/")) {
		return true
	}
	f := bytes.Fields(l)
	if len(f) != 3 || len(f[2]) < 5 || !bytes.EqualFold(f[2][:4], []byte("SIP/")) {
		return false
	}
	for _, c := range f[0] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0) {
			return false
		}
	}
	return true
}
