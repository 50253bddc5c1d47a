package control

import (
	"log"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
)

// httpErrorLog is net/http's error log (TLS handshake failures, bad
// requests it answers itself): lines a remote client triggers, so they go
// to our log at debug level, cut to 200 bytes, and one per client address
// per 10 s.
func httpErrorLog(entry *logrus.Entry) *log.Logger {
	return log.New(&limitedWriter{log: entry, limit: ratelog.New(10*time.Second, 4096)}, "", 0)
}

type limitedWriter struct {
	log   *logrus.Entry
	limit *ratelog.Limiter
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	key := line
	// "http: TLS handshake error from 192.0.2.1:5555: ..." : key on the client's host.
	if _, rest, ok := strings.Cut(line, " from "); ok {
		key, _, _ = strings.Cut(rest, ":")
	}
	ok, held := w.limit.Allow(key)
	if !ok {
		return len(p), nil
	}
	e := w.log
	if held > 0 {
		e = e.WithField("suppressed", held)
	}
	e.Debug(ratelog.Truncate(line, 200))
	return len(p), nil
}
