package sip

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TCPConfig is sip.tcp: what one SIP TCP (and TLS) connection may hold
// (issue 10, finding 5: 700 silent connections were held open for good).
type TCPConfig struct {
	// IdleTimeout closes a connection that delivered nothing for this long
	// (RFC 5626 CRLF keep-alives count): a slowloris's silent sockets go,
	// and a phone simply reconnects for its next request. 0 = never.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxPerSource bounds the connections of one source address; the next
	// is closed at once (counted as tcp_limit). 0 = no bound.
	MaxPerSource int `yaml:"max_per_source"`
	// MaxTotal bounds all inbound connections of a listener. 0 = no bound.
	MaxTotal int `yaml:"max_total"`
}

// DefaultTCP is sip.tcp's default.
var DefaultTCP = TCPConfig{IdleTimeout: 2 * time.Minute, MaxPerSource: 64, MaxTotal: 4096}

func (c TCPConfig) validate() error {
	if c.IdleTimeout < 0 || c.MaxPerSource < 0 || c.MaxTotal < 0 {
		return fmt.Errorf("sip.tcp: values must be >= 0")
	}
	return nil
}

// maxHeaderCount bounds the header fields of a request we act on (513).
// Real requests carry 10–40; sipgo bounds a message at 64 KiB.
const maxHeaderCount = 128

// limitListener applies sip.tcp to a listener's accepted connections.
type limitListener struct {
	net.Listener
	cfg    TCPConfig
	refuse func(src string) // counts (and logs) a connection closed at accept
	frame  bool             // hand sipgo whole SIP messages only (plain TCP)
	broken func(src string) // a framed stream stopped at bytes that are not SIP

	mu       sync.Mutex // guards bySource and total
	bySource map[netip.Addr]int
	total    int
}

func newLimitListener(ln net.Listener, cfg TCPConfig, refuse func(string)) *limitListener {
	return &limitListener{Listener: ln, cfg: cfg, refuse: refuse, bySource: make(map[netip.Addr]int)}
}

// Accept returns the next connection within the bounds; those past them
// are closed here and never reach sipgo.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		l.mu.Lock()
		over := l.cfg.MaxTotal > 0 && l.total >= l.cfg.MaxTotal ||
			l.cfg.MaxPerSource > 0 && l.bySource[ip] >= l.cfg.MaxPerSource
		if !over {
			l.total++
			l.bySource[ip]++
		}
		l.mu.Unlock()
		if over {
			_ = c.Close()
			l.refuse(c.RemoteAddr().String())
			continue
		}
		lc := &limitedConn{Conn: c, l: l, ip: ip, idle: l.cfg.IdleTimeout, closed: make(chan struct{})}
		if l.frame {
			lc.framer = &streamFramer{}
		}
		return lc, nil
	}
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.bySource[ip] - 1; n > 0 {
		l.bySource[ip] = n
	} else {
		delete(l.bySource, ip)
	}
}

// open reports the connections held (for tests).
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// limitedConn closes itself after idle without a byte read, gives its
// slot back once closed, and (TCP, when framed) hands sipgo whole SIP
// messages only (framer.go).
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	idle time.Duration
	once sync.Once

	framer *streamFramer // nil: bytes pass as they come (TLS: below the TLS layer)
	raw    []byte        // read buffer for the framer
	out    []byte        // framed bytes not yet returned
	broke  bool
	closed chan struct{} // closed by Close: ends a linger
}

func (c *limitedConn) Read(b []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(b, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.broke {
			// The stream broke: nothing more is read; after the linger the
			// connection ends as a peer's close does.
			t := time.NewTimer(time.Until(c.framer.broken.Add(brokenLinger)))
			select {
			case <-t.C:
			case <-c.closed:
			}
			t.Stop()
			return 0, io.EOF
		}
		n, err := c.rawRead(b)
		if c.framer == nil || n == 0 {
			return n, err
		}
		if cap(c.raw) < n {
			c.raw = make([]byte, 0, 2*n)
		}
		c.out, c.broke = c.framer.feed(b[:n], c.raw[:0])
		if c.broke && c.l.broken != nil {
			c.l.broken(c.Conn.RemoteAddr().String())
		}
		if err != nil && len(c.out) == 0 && !c.broke {
			return 0, err
		}
	}
}

func (c *limitedConn) rawRead(b []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && c.idle > 0 {
		// Idle: end it as a closed connection, which sipgo handles
		// quietly (a timeout would be logged as a read error).
		_ = c.Close()
		return n, io.EOF
	}
	return n, err
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		close(c.closed)
		c.l.release(c.ip)
	})
	return err
}
