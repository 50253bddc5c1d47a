package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mediagw/mediagw/bench/internal/bencode"
)

// NGClient speaks rtpengine's ng control protocol over UDP: each datagram is
// "<cookie> <bencoded dictionary>", the reply carries the same cookie.
// Safe for concurrent use.
type NGClient struct {
	conn    *net.UDPConn
	remote  *net.UDPAddr
	Timeout time.Duration // per try; default 1 s
	Tries   int           // default 3

	mu      sync.Mutex // guards pending and next
	pending map[string]chan map[string]any
	next    uint64
	done    chan struct{}
}

// DialNG opens a client socket on local to remote (the --listen-ng address).
func DialNG(local, remote string) (*NGClient, error) {
	conn, ra, err := dialUDP(local, remote)
	if err != nil {
		return nil, err
	}
	c := &NGClient{conn: conn, remote: ra, Timeout: time.Second, Tries: 3,
		pending: map[string]chan map[string]any{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Close closes the socket and waits for the reader.
func (c *NGClient) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// SplitNG splits a datagram into its cookie and decoded dictionary.
func SplitNG(b []byte) (string, map[string]any, error) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return "", nil, fmt.Errorf("%w: no cookie", ErrMalformed)
	}
	v, err := bencode.Unmarshal(b[sp+1:])
	if err != nil {
		return "", nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: body is %T, not a dictionary", ErrMalformed, v)
	}
	return string(b[:sp]), d, nil
}

func (c *NGClient) readLoop() {
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
		cookie, d, err := SplitNG(buf[:n])
		if err != nil {
			continue
		}
		c.mu.Lock()
		ch, ok := c.pending[cookie]
		delete(c.pending, cookie)
		c.mu.Unlock()
		if ok {
			ch <- d
		}
	}
}

// Do sends one command dictionary and returns the reply dictionary. A reply
// whose "result" is not "ok" is returned with an error naming its reason.
func (c *NGClient) Do(ctx context.Context, cmd map[string]any) (map[string]any, error) {
	body, err := bencode.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.next++
	cookie := "b" + strconv.FormatUint(c.next, 36)
	c.pending[cookie] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, cookie)
		c.mu.Unlock()
	}()
	msg := append([]byte(cookie+" "), body...)
	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	for try := 0; try < c.Tries; try++ {
		if _, err := c.conn.WriteToUDP(msg, c.remote); err != nil {
			return nil, err
		}
		timer.Reset(c.Timeout)
		select {
		case d := <-ch:
			if res, _ := d["result"].(string); res != "ok" {
				reason, _ := d["error-reason"].(string)
				return d, fmt.Errorf("ng %v: result %q: %s", cmd["command"], res, reason)
			}
			return d, nil
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("ng %v: %w after %d tries", cmd["command"], ErrTimeout, c.Tries)
}

// RTPengine drives rtpengine: offer with A's SDP, answer with B's SDP, delete.
type RTPengine struct {
	Client *NGClient
	Prefix string // call-id prefix, unique per run
}

var ngReplace = []string{"origin", "session-connection"}

func (e *RTPengine) Setup(ctx context.Context, id int, a, b netip.AddrPort) (Call, error) {
	callID := fmt.Sprintf("%s%x", e.Prefix, id)
	from, to := "a"+strconv.Itoa(id), "b"+strconv.Itoa(id)
	offer, err := e.Client.Do(ctx, map[string]any{"command": "offer", "call-id": callID,
		"from-tag": from, "sdp": SDP(a, id), "replace": ngReplace})
	if err != nil {
		return Call{}, err
	}
	// The offer as rewritten for B names the port B sends to.
	bToA, err := sdpOf(offer)
	if err != nil {
		return Call{}, fmt.Errorf("offer: %w", err)
	}
	answer, err := e.Client.Do(ctx, map[string]any{"command": "answer", "call-id": callID,
		"from-tag": from, "to-tag": to, "sdp": SDP(b, id), "replace": ngReplace})
	if err != nil {
		_ = e.Teardown(ctx, Call{ref: [3]string{callID, from}})
		return Call{}, err
	}
	// The answer as rewritten for A names the port A sends to.
	aToB, err := sdpOf(answer)
	if err != nil {
		return Call{}, fmt.Errorf("answer: %w", err)
	}
	return Call{AToB: aToB, BToA: bToA, ref: [3]string{callID, from}}, nil
}

func sdpOf(d map[string]any) (netip.AddrPort, error) {
	s, ok := d["sdp"].(string)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%w: reply has no sdp", ErrMalformed)
	}
	return MediaAddr(s)
}

func (e *RTPengine) Teardown(ctx context.Context, c Call) error {
	_, err := e.Client.Do(ctx, map[string]any{"command": "delete", "call-id": c.ref[0], "from-tag": c.ref[1]})
	return err
}

func (e *RTPengine) Close() error { return e.Client.Close() }
