package sip

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
)

// sipgoLogValueMax bounds every value sipgo puts in a log line: it logs
// whole unparseable datagrams ("failed to parse", data=...), which a remote
// party chooses (35 KB lines before; issue 10, finding 7).
const sipgoLogValueMax = 200

// sipgoLogInterval lets one warning or error line per message and remote
// address through per interval; the rest are counted and the count is
// added to the next line let through ("suppressed").
const sipgoLogInterval = 10 * time.Second

// slogHandler forwards sipgo's log/slog records to logrus. sipgo's Info
// records describe routine protocol events (retransmissions, unmatched
// responses) that repeat under load, so they are logged at debug level.
// Values are truncated, and warnings and errors are rate-limited per
// message and remote address, since a remote party can trigger them.
type slogHandler struct {
	log   *logrus.Entry
	group string
	limit *ratelog.Limiter // shared by the handlers WithAttrs/WithGroup derive
}

func newSlogLogger(log *logrus.Entry) *slog.Logger {
	return slog.New(&slogHandler{log: log, limit: ratelog.New(sipgoLogInterval, 4096)})
}

// quietWarnings are sipgo warnings about its own bookkeeping, logged at
// debug: a connection closed hard (a framing error, our idle timeout) has
// its reference count zeroed, and the transactions that still held it then
// count below zero. Nothing is wrong for the caller.
var quietWarnings = map[string]bool{"TCP ref went negative": true, "UDP ref went negative": true}

func (h *slogHandler) level(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.DebugLevel
	}
	return logrus.TraceLevel
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.Logger.IsLevelEnabled(h.level(l))
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && r.Level < slog.LevelError && quietWarnings[r.Message] {
		r.Level = slog.LevelInfo // logged at debug
	}
	fields := make(logrus.Fields, r.NumAttrs()+1)
	r.Attrs(func(a slog.Attr) bool {
		h.add(fields, a)
		return true
	})
	if r.Level >= slog.LevelWarn {
		key := r.Message
		for _, k := range []string{"raddr", "dst", "src"} {
			if v, ok := fields[k]; ok {
				key += "|" + fmt.Sprint(v)
				break
			}
		}
		ok, suppressed := h.limit.Allow(key)
		if !ok {
			return nil
		}
		if suppressed > 0 {
			fields["suppressed"] = suppressed
		}
	}
	h.log.WithFields(fields).Log(h.level(r.Level), ratelog.Truncate(r.Message, sipgoLogValueMax))
	return nil
}

func (h *slogHandler) add(fields logrus.Fields, a slog.Attr) {
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	switch key {
	case "callid", "call-id":
		key = "call_id"
	case "tx":
		key = "trans_id"
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			h.add(fields, slog.Attr{Key: a.Key + "." + g.Key, Value: g.Value})
		}
		return
	}
	switch v.Kind() {
	case slog.KindString:
		fields[key] = ratelog.Truncate(v.String(), sipgoLogValueMax)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			fields[key] = ratelog.Truncate(err.Error(), sipgoLogValueMax)
		} else {
			fields[key] = ratelog.Truncate(fmt.Sprint(v.Any()), sipgoLogValueMax)
		}
	default:
		fields[key] = v.Any()
	}
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make(logrus.Fields, len(attrs))
	for _, a := range attrs {
		h.add(fields, a)
	}
	return &slogHandler{log: h.log.WithFields(fields), group: h.group, limit: h.limit}
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &slogHandler{log: h.log, group: g, limit: h.limit}
}
