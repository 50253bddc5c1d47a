package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MGCPResponse is a parsed MGCP response.
type MGCPResponse struct {
	Code    int
	TID     uint32
	Comment string
	Params  map[string]string // lower-case parameter name → value
	SDP     string
}

// Param returns the value of a parameter, case-insensitively.
func (r *MGCPResponse) Param(name string) string { return r.Params[strings.ToLower(name)] }

var (
	// ErrTimeout reports a command that got no final response after all retransmissions.
	ErrTimeout = errors.New("no response")
	// ErrMalformed reports a response that cannot be parsed.
	ErrMalformed = errors.New("malformed response")
)

// ParseMGCPResponse parses one response (CRLF or LF line ends).
func ParseMGCPResponse(b []byte) (*MGCPResponse, error) {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	head, sdp, _ := strings.Cut(text, "\n\n")
	lines := strings.Split(head, "\n")
	f := strings.SplitN(lines[0], " ", 3)
	if len(f) < 2 || len(f[0]) != 3 {
		return nil, fmt.Errorf("%w: status line %q", ErrMalformed, lines[0])
	}
	code, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("%w: code %q", ErrMalformed, f[0])
	}
	tid, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: transaction id %q", ErrMalformed, f[1])
	}
	r := &MGCPResponse{Code: code, TID: uint32(tid), Params: map[string]string{}, SDP: sdp}
	if len(f) == 3 {
		r.Comment = f[2]
	}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%w: parameter line %q", ErrMalformed, l)
		}
		r.Params[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return r, nil
}

// MGCPClient is a call agent: it sends commands over one UDP socket and
// matches responses by transaction ID. Safe for concurrent use.
type MGCPClient struct {
	conn    *net.UDPConn
	remote  *net.UDPAddr
	Timeout time.Duration // per try; default 500 ms
	Tries   int           // default 3

	mu             sync.Mutex // guards pending, nextTID, retrans and stray
	pending        map[uint32]chan *MGCPResponse
	nextTID        uint32
	retrans, stray uint64

	done chan struct{}
}

// DialMGCP opens a client socket on local (host:port, port 0 for any) to remote.
func DialMGCP(local, remote string) (*MGCPClient, error) {
	conn, ra, err := dialUDP(local, remote)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteBuffer(4 << 20)
	c := &MGCPClient{conn: conn, remote: ra, Timeout: 500 * time.Millisecond, Tries: 3,
		pending: map[uint32]chan *MGCPResponse{}, nextTID: 1000, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Close closes the socket and waits for the reader.
func (c *MGCPClient) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Stats returns how many retransmissions were sent and how many responses
// matched no pending command.
func (c *MGCPClient) Stats() (retrans, stray uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retrans, c.stray
}

func (c *MGCPClient) readLoop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		for _, msg := range bytes.Split(buf[:n], []byte("\n.\n")) { // piggybacked
			r, err := ParseMGCPResponse(msg)
			if err != nil || r.Code < 200 { // provisional or junk: keep waiting
				continue
			}
			c.mu.Lock()
			ch, ok := c.pending[r.TID]
			if ok {
				delete(c.pending, r.TID)
			} else {
				c.stray++
			}
			c.mu.Unlock()
			if ok {
				ch <- r
			}
		}
	}
}

// Do sends "VERB tid endpoint MGCP 1.0", the parameter lines and an optional
// SDP body, retransmitting with the same transaction ID until a final
// response arrives, and returns it.
func (c *MGCPClient) Do(ctx context.Context, verb, endpoint string, params []string, sdp string) (*MGCPResponse, error) {
	ch := make(chan *MGCPResponse, 1)
	c.mu.Lock()
	c.nextTID++
	if c.nextTID > 999999999 {
		c.nextTID = 1
	}
	tid := c.nextTID
	c.pending[tid] = ch
	c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s MGCP 1.0\r\n", verb, tid, endpoint)
	for _, p := range params {
		b.WriteString(p)
		b.WriteString("\r\n")
	}
	if sdp != "" {
		b.WriteString("\r\n")
		b.WriteString(sdp)
	}
	msg := []byte(b.String())
	defer func() {
		c.mu.Lock()
		delete(c.pending, tid)
		c.mu.Unlock()
	}()
	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	for try := 0; try < c.Tries; try++ {
		if try > 0 {
			c.mu.Lock()
			c.retrans++
			c.mu.Unlock()
		}
		if _, err := c.conn.WriteToUDP(msg, c.remote); err != nil {
			return nil, err
		}
		timer.Reset(c.Timeout)
		select {
		case r := <-ch:
			return r, nil
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("%s %s: %w after %d tries", verb, endpoint, ErrTimeout, c.Tries)
}
